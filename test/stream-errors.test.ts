// Every way a streaming call can fail ends it with the right gRPC status and the
// easyremote-error-bin trailer, promptly, for any gRPC client: a raw grpc-js client that
// knows only the proto, and the TypeScript client (streams, and unary calls with
// onProgress, which travel over CallStream).
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import { ComputeNode } from '@easyremote/node';
import { CallOptions, ERROR_TRAILER, ErrorDetail, GatewayService, encodeArgs, type CallRequest, type StreamReply } from '@easyremote/protocol';
import type { Gateway } from '@easyremote/gateway';
import { spawnNode, startGateway, startNode, type NodeProcess } from './support/cluster.js';

const TOKEN = 'stream-secret';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let gw: Gateway;
let node: ComputeNode;
let client: DynamicClient;
const Raw = grpc.makeGenericClientConstructor(GatewayService, 'Gateway');
let raw: grpc.Client & { callStream(req: CallRequest, md: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<StreamReply> };

beforeAll(async () => {
  // No startup grace: an unknown function is refused at once (the grace is tested elsewhere).
  gw = await startGateway({ auth: { clientTokens: [TOKEN] }, startupGraceMs: 0 });
  node = await startNode(gw.address, (n) =>
    n
      .register('explode', () => {
        throw new RangeError('bad input range');
      })
      .register('twoThenThrow', async function* () {
        yield 1;
        yield 2;
        throw new TypeError('generator broke after two');
      })
      .register('forever', () => new Promise(() => undefined)),
  { nodeId: 'streams', telemetry: false });
  client = connect(gw.address, { token: TOKEN });
  raw = new Raw(gw.address, grpc.credentials.createInsecure()) as unknown as typeof raw;
});

afterAll(async () => {
  client.close();
  raw.close();
  await node.stop();
  await gw.stop();
});

interface StreamEnd {
  status: grpc.status;
  code: string;
  message: string;
  values: unknown[];
  ms: number;
}

/** A CallStream from the raw client: its chunks, its final status and the trailer's code. */
function rawStream(fn: string, args: unknown[], opts: { token?: string | null; timeoutMs?: number; strategy?: string } = {}): Promise<StreamEnd> {
  const md = new grpc.Metadata();
  if (opts.token !== null) md.set('authorization', `Bearer ${opts.token ?? TOKEN}`);
  const req: CallRequest = {
    function: fn,
    args: encodeArgs(args),
    options: opts.strategy ? CallOptions.fromPartial({ strategy: opts.strategy }) : undefined,
  };
  const t0 = Date.now();
  const call = raw.callStream(req, md, { deadline: Date.now() + (opts.timeoutMs ?? 10_000) });
  const values: unknown[] = [];
  call.on('data', (r: StreamReply) => values.push(r.chunk ?? r.result));
  return new Promise((resolve) => {
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => {
      const bin = s.metadata.get(ERROR_TRAILER)[0];
      const detail = bin instanceof Buffer ? ErrorDetail.decode(bin) : undefined;
      resolve({ status: s.code, code: detail?.code ?? '', message: detail?.message ?? s.details, values, ms: Date.now() - t0 });
    });
  });
}

/** The same call through the TypeScript client's stream. */
async function tsStream(c: DynamicClient, fn: string, args: unknown[], opts: { timeout?: number; strategy?: string } = {}) {
  const t0 = Date.now();
  const values: unknown[] = [];
  try {
    for await (const v of c.stream(fn, args, { timeout: opts.timeout ?? 10_000, strategy: opts.strategy })) values.push(v);
    return { error: undefined, values, ms: Date.now() - t0 };
  } catch (error) {
    return { error: error as { code: string; grpcStatus: number; message: string }, values, ms: Date.now() - t0 };
  }
}

describe('CallStream errors reach the caller with a status', () => {
  const cases: Array<{ name: string; fn: string; args?: unknown[]; token?: string | null; strategy?: string; status: grpc.status; code: string; values?: unknown[] }> = [
    { name: 'unknown function', fn: 'no_such_function', status: grpc.status.NOT_FOUND, code: 'FUNCTION_NOT_FOUND' },
    { name: 'empty function name', fn: '', status: grpc.status.INVALID_ARGUMENT, code: 'INVALID_ARGUMENT' },
    { name: 'unknown strategy', fn: 'twoThenThrow', strategy: 'no_such_strategy', status: grpc.status.INVALID_ARGUMENT, code: 'INVALID_ARGUMENT' },
    { name: 'a handler that throws', fn: 'explode', status: grpc.status.UNKNOWN, code: 'REMOTE_ERROR' },
    { name: 'a generator that throws after two chunks', fn: 'twoThenThrow', status: grpc.status.UNKNOWN, code: 'REMOTE_ERROR', values: [1, 2] },
    { name: 'a missing token', fn: 'explode', token: null, status: grpc.status.UNAUTHENTICATED, code: 'UNAUTHENTICATED' },
    { name: 'a wrong token', fn: 'explode', token: 'wrong', status: grpc.status.UNAUTHENTICATED, code: 'UNAUTHENTICATED' },
  ];

  for (const c of cases) {
    it(`${c.name}: a raw gRPC client gets ${c.code} within 1 s`, async () => {
      const end = await rawStream(c.fn, c.args ?? [], { token: c.token, strategy: c.strategy });
      expect(end).toMatchObject({ status: c.status, code: c.code });
      expect(end.ms).toBeLessThan(1000);
      if (c.values) expect(end.values.length).toBe(c.values.length);
    });
  }

  it('the TypeScript client sees the same errors, as typed errors, within 1 s', async () => {
    for (const c of cases.filter((x) => x.token === undefined)) {
      const r = await tsStream(client, c.fn, c.args ?? [], { strategy: c.strategy });
      expect(r.error, c.name).toMatchObject({ code: c.code, grpcStatus: c.status });
      expect(r.ms, c.name).toBeLessThan(1000);
      if (c.values) expect(r.values).toEqual(c.values);
    }
    const anonymous = connect(gw.address);
    const r = await tsStream(anonymous, 'explode', []);
    anonymous.close();
    expect(r.error).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('a unary call with onProgress (which travels over CallStream) gets the handler error, not a deadline', async () => {
    const t0 = Date.now();
    const err = await client.call('explode', [], { timeout: 10_000, onProgress: () => undefined }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'REMOTE_ERROR', remoteName: 'RangeError', message: 'bad input range' });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("the gateway's own deadline ends a stream with DEADLINE_EXCEEDED at the deadline", async () => {
    const end = await rawStream('forever', [], { timeoutMs: 300 });
    expect(end).toMatchObject({ status: grpc.status.DEADLINE_EXCEEDED });
    expect(end.ms).toBeLessThan(1300);
    const r = await tsStream(client, 'forever', [], { timeout: 300 });
    expect(r.error).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(r.ms).toBeLessThan(1300);
  });
});

describe('a node lost mid-stream', () => {
  let proc: NodeProcess | undefined;
  afterAll(() => proc?.kill('SIGKILL'));

  it('fails the stream with NODE_LOST within 1 s of the kill, for the raw and the TypeScript client', async () => {
    proc = await spawnNode('stream-node', gw.address, 'doomed');
    // Both clients hold a stream of `ticker` from the node process (it yields every 50 ms).
    const rawEnd = rawStream('ticker', [1_000], { timeoutMs: 30_000 });
    const tsValues: unknown[] = [];
    let tsError: { code: string } | undefined;
    const tsDone = (async () => {
      try {
        for await (const v of client.stream('ticker', [1_000], { timeout: 30_000 })) tsValues.push(v);
      } catch (e) {
        tsError = e as { code: string };
      }
    })();
    await proc.waitForLine(/^ticking$/);
    await sleep(200);
    const killedAt = Date.now();
    proc.kill('SIGKILL');
    const end = await rawEnd;
    await tsDone;
    expect(end).toMatchObject({ status: grpc.status.UNAVAILABLE, code: 'NODE_LOST' });
    expect(Date.now() - killedAt).toBeLessThan(1000);
    expect(end.values.length).toBeGreaterThan(0);
    expect(tsError).toMatchObject({ code: 'NODE_LOST' });
    expect(tsValues.length).toBeGreaterThan(0);
  });
});
