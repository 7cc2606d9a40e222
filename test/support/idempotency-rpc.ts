// One Call or CallStream made by hand, reporting what a failover-aware client reads of it:
// the `easyremote-idempotent` response header, the gRPC status, and the catalogue code of
// the error trailer. With `assume`, the request says `x-easyremote-assume-idempotent: 1`.
import * as grpc from '@grpc/grpc-js';
import { ASSUME_IDEMPOTENT_METADATA_KEY, CallRequest, ERROR_TRAILER, ErrorDetail, IDEMPOTENT_HEADER_KEY } from '@easyremote/protocol';

export interface IdempotencyRpcResult {
  header: string | undefined;
  status: grpc.status;
  code: string | undefined;
}

export function idempotencyRpc(on: grpc.Client, method: 'Call' | 'CallStream', request: CallRequest, assume = false): Promise<IdempotencyRpcResult> {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    if (assume) md.set(ASSUME_IDEMPOTENT_METADATA_KEY, '1');
    let header: string | undefined;
    const finish = (status: grpc.status, err?: grpc.ServiceError) => {
      const bin = err?.metadata?.get(ERROR_TRAILER)[0];
      resolve({ header, status, code: bin instanceof Buffer ? ErrorDetail.decode(bin).code : undefined });
    };
    const path = `/easyremote.v1.Gateway/${method}`;
    const serialize = (r: CallRequest) => Buffer.from(CallRequest.encode(r).finish());
    const call =
      method === 'Call'
        ? on.makeUnaryRequest(path, serialize, (b: Buffer) => b, request, md, { deadline: Date.now() + 5000 }, (err) => finish(err ? err.code : grpc.status.OK, err ?? undefined))
        : on.makeServerStreamRequest(path, serialize, (b: Buffer) => b, request, md, { deadline: Date.now() + 5000 });
    call.on('metadata', (m: grpc.Metadata) => (header = m.get(IDEMPOTENT_HEADER_KEY)[0] as string | undefined));
    if (method === 'CallStream') {
      call.on('data', () => undefined);
      call.on('error', (err: grpc.ServiceError) => finish(err.code, err));
      call.on('end', () => finish(grpc.status.OK));
    }
  });
}
