// Test support: the gateway's LoadBalancer service driven with nothing but grpc-js and the
// proto, as a backend or client in another language would. Calls never reject: each
// answers with the reply or the catalogue error its status and trailer carry.
import * as grpc from '@grpc/grpc-js';
import {
  AUTH_METADATA_KEY,
  BackendInfo,
  BackendRequest,
  fromServiceError,
  LoadBalancerService,
  LoadReport,
  Outcome,
  type BackendLease,
  type BackendPicks,
  type DeregisterReply,
  type EasyRemoteError,
} from '@easyremote/protocol';

const LbClient = grpc.makeGenericClientConstructor(LoadBalancerService, 'LoadBalancer');

export type Answer<T> = { reply: T; error?: undefined } | { reply?: undefined; error: EasyRemoteError };

export class RawLoadBalancer {
  private readonly client: grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, reply?: unknown) => void) => void>;

  constructor(
    address: string,
    private readonly token?: string,
  ) {
    this.client = new LbClient(address, grpc.credentials.createInsecure()) as never;
  }

  private rpc<T>(method: string, request: unknown): Promise<Answer<T>> {
    const md = new grpc.Metadata();
    if (this.token) md.set(AUTH_METADATA_KEY, `Bearer ${this.token}`);
    return new Promise((resolve) => this.client[method]!(request, md, (err, reply) => resolve(err ? { error: fromServiceError(err) } : { reply: reply as T })));
  }

  register(info: Partial<BackendInfo>): Promise<Answer<BackendLease>> {
    return this.rpc('registerBackend', BackendInfo.fromPartial({ address: '127.0.0.1', port: 9, ...info }));
  }

  report(report: Partial<LoadReport>): Promise<Answer<BackendLease>> {
    return this.rpc('reportLoad', LoadReport.fromPartial(report));
  }

  get(request: Partial<BackendRequest>): Promise<Answer<BackendInfo>> {
    return this.rpc('getBackend', BackendRequest.fromPartial(request));
  }

  getMany(request: Partial<BackendRequest>): Promise<Answer<BackendPicks>> {
    return this.rpc('getBackends', BackendRequest.fromPartial(request));
  }

  outcome(outcome: Partial<Outcome>): Promise<Answer<object>> {
    return this.rpc('reportOutcome', Outcome.fromPartial(outcome));
  }

  deregister(id: string): Promise<Answer<DeregisterReply>> {
    return this.rpc('deregister', { id });
  }

  close(): void {
    this.client.close();
  }
}

/** The reply, or a thrown error naming what came back instead. */
export function ok<T>(answer: Answer<T>): T {
  if (answer.error !== undefined) throw new Error(`expected a reply, got ${answer.error.code}: ${answer.error.message}`);
  return answer.reply;
}
