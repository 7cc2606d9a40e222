// The session transport (calls as frames over a few multiplexed streams) gives exactly
// what the per-call methods give: the same results, the same errors for the whole
// catalogue, deadlines, cancellation, progress and streams; and one slow consumer on a
// session does not hold up the other calls on it.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import { currentCall, type ComputeNode } from '@easyremote/node';
import type { Gateway } from '@easyremote/gateway';
import { encodeArgs } from '@easyremote/protocol';
import { startGateway, startNode, waitFor } from './support/cluster.js';
import { RawSession } from './support/raw.js';

const TOKEN = 'session-secret';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const aborted: string[] = [];

let gw: Gateway;
let node: ComputeNode;
let session: DynamicClient;
let perCall: DynamicClient;

beforeAll(async () => {
  gw = await startGateway({ auth: { clientTokens: [TOKEN] }, maxPayloadBytes: 32 * 1024 * 1024, startupGraceMs: 0 });
  node = await startNode(
    gw.address,
    (n) =>
      n
        .register('echo', (v: unknown) => v)
        .register('explode', () => {
          throw new RangeError('out of range');
        })
        .register('invalid', () => {
          throw new (class InvalidInput extends Error {})('bad');
        })
        .register('count', async function* (n: number) {
          for (let i = 0; i < n; i++) yield i;
        })
        .register('ticks', async function* (n: number) {
          for (let i = 0; i < n; i++) {
            yield new Uint8Array(1024).fill(i & 0xff);
          }
        })
        .register('work', async (steps: number) => {
          for (let i = 1; i <= steps; i++) currentCall().progress(i / steps, `step ${i}`);
          return 'done';
        })
        .register('hang', async (label: string) => {
          await new Promise<void>((resolve) => currentCall().signal.addEventListener('abort', () => resolve()));
          aborted.push(`${label}:${(currentCall().signal.reason as Error).name}`);
          return 'never';
        })
        .register('gpuOnly', () => 1, { requirements: { gpuCount: '>=1' } })
        .register('priced', () => 1, { costPerHour: 1000, loadBalancing: 'cost_aware' })
        .register('single', async (ms: number) => (await sleep(ms), 'ok'), { maxConcurrent: 1 }),
    { nodeId: 'session-node', telemetry: false },
  );
  session = connect(gw.address, { token: TOKEN });
  perCall = connect(gw.address, { token: TOKEN, transport: 'unary' });
});

afterAll(async () => {
  session.close();
  perCall.close();
  await node.stop();
  await gw.stop();
});

/** The outcome of a call as data: its value, or its error's catalogue fields. */
async function outcome(p: PromiseLike<unknown>) {
  try {
    return { value: await p };
  } catch (e) {
    const err = e as { name: string; code: string; message: string; grpcStatus: number; retryable: boolean; remoteName?: string; limit?: unknown };
    return { error: { name: err.name, code: err.code, message: err.message, grpcStatus: err.grpcStatus, retryable: err.retryable, remoteName: err.remoteName, limit: err.limit } };
  }
}

async function collect(it: AsyncIterable<unknown>) {
  const values: unknown[] = [];
  try {
    for await (const v of it) values.push(v);
    return { values };
  } catch (e) {
    return { values, code: (e as { code: string }).code };
  }
}

describe('session and per-call transports give the same answers', () => {
  const values: unknown[] = [
    42,
    'text',
    null,
    { nested: { list: [1, 'two', { three: 3 }] } },
    new Map<unknown, unknown>([[1, 'one'], ['k', new Set([1, 2])]]),
    new Float32Array([1.5, 2.5]),
    Buffer.from('bytes'),
    new Date(1_700_000_000_000),
    12345678901234567890n,
  ];
  it('results of every kind', async () => {
    for (const v of values) {
      const [a, b] = await Promise.all([outcome(session.echo(v)), outcome(perCall.echo(v))]);
      expect(a, String(v)).toEqual(b);
      expect(a.value).toEqual(v);
    }
  });

  const cases: Array<[string, (c: DynamicClient) => Promise<unknown>, string]> = [
    ['unknown function', (c) => c.call('no_such_function'), 'FUNCTION_NOT_FOUND'],
    ['empty function name', (c) => c.call(''), 'INVALID_ARGUMENT'],
    ['a generator called for one result', (c) => c.call('count', [3]), 'INVALID_ARGUMENT'],
    ['an unknown strategy', (c) => c.call('echo', [1], { strategy: 'no_such' }), 'INVALID_ARGUMENT'],
    ['a handler that throws', (c) => c.call('explode'), 'REMOTE_ERROR'],
    ['a function name over the limit', (c) => c.call('x'.repeat(300)), 'INVALID_ARGUMENT'],
    ['metadata over the limit', (c) => c.call('echo', [1], { metadata: Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`k${i}`, 'v'])) }), 'INVALID_ARGUMENT'],
    ['no node meets the requirements', (c) => c.call('gpuOnly'), 'NO_NODE_AVAILABLE'],
    ['no node fits the budget', (c) => c.call('priced', [], { maxCost: 1e-9 }), 'BUDGET_EXCEEDED'],
    ['the deadline passes', (c) => c.call('hang', ['deadline'], { timeout: 200 }), 'DEADLINE_EXCEEDED'],
  ];
  for (const [name, run, code] of cases) {
    it(`${name}: ${code}, identical on both`, async () => {
      const [a, b] = await Promise.all([outcome(run(session)), outcome(run(perCall))]);
      expect(a.error?.code).toBe(code);
      expect(a).toEqual(b);
    });
  }

  it('arguments over the payload limit: PAYLOAD_TOO_LARGE on both', async () => {
    // A per-call client sends one message, which grpc-js refuses by its size before the
    // gateway sees it; a session sends parts, and the gateway refuses naming its limit.
    const big = Buffer.alloc(33 * 1024 * 1024);
    const [a, b] = await Promise.all([outcome(session.echo(big)), outcome(perCall.echo(big))]);
    expect(a.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', grpcStatus: grpc.status.RESOURCE_EXHAUSTED, retryable: false, limit: { name: 'max_payload_bytes', limit: 32 * 1024 * 1024 } });
    expect(b.error).toMatchObject({ code: a.error!.code, grpcStatus: a.error!.grpcStatus, retryable: a.error!.retryable });
  });

  it('an unauthenticated caller gets UNAUTHENTICATED on both', async () => {
    const anonSession = connect(gw.address);
    const anonPerCall = connect(gw.address, { transport: 'unary' });
    const [a, b] = await Promise.all([outcome(anonSession.echo(1)), outcome(anonPerCall.echo(1))]);
    anonSession.close();
    anonPerCall.close();
    expect(a.error?.code).toBe('UNAUTHENTICATED');
    expect(a).toEqual(b);
  });

  it('a full function refuses with OVERLOADED on both, naming the limit', async () => {
    const gw2 = await startGateway({ queueSize: 0, startupGraceMs: 0 });
    const n2 = await startNode(gw2.address, (n) => n.register('single', async () => (await sleep(300), 'ok'), { maxConcurrent: 1 }), { nodeId: 'narrow', telemetry: false });
    const s = connect(gw2.address);
    const u = connect(gw2.address, { transport: 'unary' });
    try {
      const running = s.call('single');
      await waitFor('the slot taken', () => n2.activeCalls === 1);
      const [a, b] = await Promise.all([outcome(s.call('single')), outcome(u.call('single'))]);
      expect(a.error?.code).toBe('OVERLOADED');
      expect(a).toEqual(b);
      expect(await running).toBe('ok');
    } finally {
      s.close();
      u.close();
      await n2.stop();
      await gw2.stop();
    }
  });

  it('streams: the same values, and the same error after a failure', async () => {
    expect(await collect(session.stream('count', [5]))).toEqual(await collect(perCall.stream('count', [5])));
    expect(await collect(session.stream('count', [5]))).toEqual({ values: [0, 1, 2, 3, 4] });
    expect(await collect(session.stream('explode'))).toEqual(await collect(perCall.stream('explode')));
  });

  it('progress reaches the caller on both', async () => {
    const seen: Record<string, string[]> = { session: [], perCall: [] };
    const a = await session.call('work', [3], { onProgress: (f, m) => seen.session!.push(`${f.toFixed(2)} ${m}`) });
    const b = await perCall.call('work', [3], { onProgress: (f, m) => seen.perCall!.push(`${f.toFixed(2)} ${m}`) });
    expect(a).toBe('done');
    expect(b).toBe('done');
    expect(seen.session).toEqual(['0.33 step 1', '0.67 step 2', '1.00 step 3']);
    expect(seen.session).toEqual(seen.perCall);
  });

  it('cancellation: the caller gets CANCELLED and the handler sees its signal fire, on both', async () => {
    for (const [label, c] of [['session', session], ['perCall', perCall]] as const) {
      const controller = new AbortController();
      const p = outcome(c.call('hang', [label], { signal: controller.signal }));
      await waitFor(`${label} running`, () => node.activeCalls > 0);
      controller.abort();
      expect((await p).error?.code).toBe('CANCELLED');
      await waitFor(`${label} aborted`, () => aborted.some((a) => a.startsWith(`${label}:`)));
    }
  });

  it('a deadline reaches the handler as DeadlineExceeded on both', async () => {
    await outcome(session.call('hang', ['s-deadline'], { timeout: 150 }));
    await outcome(perCall.call('hang', ['u-deadline'], { timeout: 150 }));
    await waitFor('both handlers aborted', () => aborted.includes('s-deadline:DeadlineExceeded') && aborted.includes('u-deadline:DeadlineExceeded'));
  });

  it('large arguments and results travel in parts and come back exact', async () => {
    const big = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    const back = (await session.echo(big)) as Buffer;
    expect(back.length).toBe(big.length);
    expect(back.equals(big)).toBe(true);
  });
});

describe('fairness on one session', () => {
  it('a consumer that stops reading one stream does not stall the other calls on the session', async () => {
    // One client, so one session carries both the stalled stream and the other calls.
    const stalled = session.stream('ticks', [10_000])[Symbol.asyncIterator]();
    expect((await stalled.next()).done).toBe(false);
    // The stalled stream holds credit for a few chunks at most; everything else flows.
    const t0 = Date.now();
    for (let i = 0; i < 50; i++) expect(await session.echo(i)).toBe(i);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await collect(session.stream('count', [100]))).toEqual({ values: Array.from({ length: 100 }, (_, i) => i) });
    await stalled.return?.();
  });

  it('a large transfer shares the session with small calls', async () => {
    const big = session.call('echo', [Buffer.alloc(8 * 1024 * 1024)]);
    const small: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = Date.now();
      await session.echo(i);
      small.push(Date.now() - t0);
    }
    expect(((await big) as Buffer).length).toBe(8 * 1024 * 1024);
    // Small calls interleave with the parts rather than waiting for the whole transfer.
    expect(Math.max(...small)).toBeLessThan(2000);
  });

  it('the node is told to stop a stream the session consumer abandoned', async () => {
    let produced = 0;
    const n2 = await startNode(
      gw.address,
      (n) =>
        n.register('endless', async function* () {
          for (;;) {
            produced++;
            yield produced;
            await sleep(1);
          }
        }),
      { nodeId: 'endless-node', telemetry: false },
    );
    try {
      for await (const v of session.stream('endless')) if ((v as number) >= 5) break;
      await sleep(300);
      const after = produced;
      await sleep(300);
      expect(produced).toBe(after);
    } finally {
      await n2.stop();
    }
  });
});

describe('session frames from a raw client', () => {
  const call = (callId: number, fn: string, args: unknown[]) => ({ call: { callId, function: fn, args: encodeArgs(args) } });

  it('a cancelled call leaves the session: its id is free again, and a half-close ends the session once the rest are answered', async () => {
    const raw = new RawSession(gw.address, TOKEN);
    try {
      raw.send(call(1, 'hang', ['raw-cancel']));
      await waitFor('the handler to start', () => node.activeCalls > 0);
      raw.send({ cancel: { callId: 1 } });
      await waitFor('the handler to see its signal fire', () => aborted.includes('raw-cancel:Cancelled'));
      // The id names no call in flight any more: it may start a new one.
      raw.send(call(1, 'echo', ['again']));
      await raw.until('the second call on id 1 to answer', () => raw.frames.some((f) => f.result?.callId === 1));
      expect(raw.frames.filter((f) => f.rejected !== undefined || f.error !== undefined)).toEqual([]);
      // Nothing is in flight: the gateway ends the stream with OK once the client half-closes.
      raw.stream.end();
      await raw.until('the session to end', () => raw.status !== undefined, 5000);
      expect(raw.status?.code).toBe(grpc.status.OK);
    } finally {
      raw.close();
    }
  });

  it('want_progress decides whether progress comes, for a call with one result or a stream', async () => {
    const raw = new RawSession(gw.address, TOKEN);
    try {
      raw.send({ call: { ...call(1, 'work', [2]).call, wantProgress: true } });
      raw.send({ call: { ...call(2, 'work', [2]).call, stream: true } });
      await raw.until('both calls to answer', () => raw.frames.filter((f) => f.result !== undefined).length === 2);
      const of = (id: number) => raw.frames.filter((f) => (f.progress ?? f.result)?.callId === id).map((f) => (f.progress ? `${f.progress.fraction} ${f.progress.message}` : 'result'));
      expect(of(1)).toEqual(['0.5 step 1', '1 step 2', 'result']);
      expect(of(2)).toEqual(['result']);
    } finally {
      raw.close();
    }
  });
});

describe('gateway status as seen through a session', () => {
  it('a session to an address where nothing listens fails fast with GATEWAY_UNAVAILABLE', async () => {
    const lost = connect('127.0.0.1:1');
    const r = await outcome(lost.echo(1, { timeout: 5000 }));
    lost.close();
    expect(r.error).toMatchObject({ code: 'GATEWAY_UNAVAILABLE', retryable: true, grpcStatus: grpc.status.UNAVAILABLE });
  });
});
