// End-to-end behaviour of the foundation over real gRPC on loopback.
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { connect, Client, type DynamicClient } from '@easyremote/client';
import { ComputeNode, currentCall, remote } from '@easyremote/node';
import { GatewayService, ERROR_TRAILER, ErrorDetail, encodeArgs, decode } from '@easyremote/protocol';
import type { Gateway } from '@easyremote/gateway';
import { FakeClock } from '../packages/gateway/test/support/fake-clock.js';
import { startGateway, startNode, waitFor } from './support/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What handlers saw, for assertions about signals. */
const seen = { aborts: [] as Array<{ fn: string; reason: string }>, produced: 0 };

/** Holds `narrow` calls until the test opens it: admission is checked without racing a timer. */
let narrowGate: Promise<void> = Promise.resolve();
let openNarrowGate: () => void = () => undefined;

class Lab {
  @remote()
  echo<T>(value: T): T {
    return value;
  }

  @remote()
  add(a: number, b: number): number {
    return a + b;
  }

  @remote()
  async describe(value: unknown) {
    return { type: Object.prototype.toString.call(value), value };
  }

  @remote()
  async *countdown(from: number) {
    for (let i = from; i > 0; i--) yield i;
  }

  @remote()
  async *firehose(chunks: number, size: number) {
    seen.produced = 0;
    for (let i = 0; i < chunks; i++) {
      seen.produced++;
      yield new Uint8Array(size).fill(i & 0xff);
    }
  }

  @remote()
  async withProgress(steps: number) {
    for (let i = 1; i <= steps; i++) {
      currentCall().progress(i / steps, `step ${i}`);
      await sleep(5);
    }
    return 'done';
  }

  @remote()
  explode(message: string) {
    const inner = () => {
      throw new RangeError(message);
    };
    inner();
  }

  @remote()
  async waitForAbort(name: string) {
    const { signal } = currentCall();
    await new Promise<void>((resolve) => {
      signal.addEventListener('abort', () => {
        seen.aborts.push({ fn: name, reason: (signal.reason as Error)?.name ?? String(signal.reason) });
        resolve();
      });
    });
    return 'aborted';
  }

  @remote({ maxConcurrent: 1, queueSize: 1 })
  async narrow() {
    await narrowGate;
    return 'ok';
  }
}

let gw: Gateway;
let node: ComputeNode;
let client: DynamicClient;

beforeAll(async () => {
  // No waiting room at the gateway: the node's own maxConcurrent + queueSize bound is what is tested.
  gw = await startGateway({ queueSize: 0 });
  node = await startNode(gw.address, (n) => n.serve(new Lab()), { nodeId: 'lab-1' });
  client = connect(gw.address);
});

afterAll(async () => {
  client.close();
  await node.stop();
  await gw.stop();
});

describe('calls', () => {
  it('calls through the transparent proxy and by name', async () => {
    expect(await client.add(2, 3)).toBe(5);
    expect(await client.call('add', [40, 2])).toBe(42);
  });

  it('calls through a proxy typed by the service class', async () => {
    const lab = client.proxy<Lab>();
    const sum: number = await lab.add(1, 2);
    expect(sum).toBe(3);
    // @ts-expect-error a method the class does not have is a compile error (and at run time the gateway knows no such function)
    await expect(lab.nosuch()).rejects.toMatchObject({ code: 'FUNCTION_NOT_FOUND' });
    // @ts-expect-error wrong argument types are a compile error
    await expect(lab.add('x', 2)).resolves.toBe('x2');
  });

  it('round-trips typed arrays, Buffers, Dates, Maps, bigints and nested objects exactly', async () => {
    const value = {
      f32: new Float32Array([1.5, -2.25, 3.125]),
      f64: new Float64Array([Math.PI]),
      i16: new Int16Array([-7, 7]),
      u8: new Uint8Array([0, 255]),
      buf: Buffer.from('héllo'),
      date: new Date('2024-02-29T12:34:56.789Z'),
      map: new Map<unknown, unknown>([
        ['a', 1],
        [2, new Map([['deep', new Date(0)]])],
      ]),
      big: 2n ** 63n - 1n,
      huge: -(2n ** 100n),
      set: new Set(['x', 'y']),
      nested: { list: [1, 'two', null, true, { three: [3.5] }], empty: {}, unicode: '日本語' },
      num: 2 ** 40 + 0.5,
      undef: undefined,
    };
    const back = await client.echo(value);
    expect(back).toEqual(value);
    expect(back.f32).toBeInstanceOf(Float32Array);
    expect(back.buf).toBeInstanceOf(Buffer);
    expect(back.date).toBeInstanceOf(Date);
    expect(back.map).toBeInstanceOf(Map);
    expect(back.map.get(2)).toBeInstanceOf(Map);
    expect(typeof back.big).toBe('bigint');
    const described = await client.describe(new Map([[1, 2]]));
    expect(described.type).toBe('[object Map]');
  });

  it('rejects an unknown function with FunctionNotFound', async () => {
    await expect(client.no_such_function()).rejects.toMatchObject({ name: 'FunctionNotFound', code: 'FUNCTION_NOT_FOUND', grpcStatus: grpc.status.NOT_FOUND });
  });

  it("delivers a handler's exception as RemoteError with the remote stack", async () => {
    const err = await client.explode('out of range').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'RemoteError', code: 'REMOTE_ERROR', remoteName: 'RangeError', message: 'out of range', nodeId: 'lab-1' });
    expect((err as { remoteStack: string }).remoteStack).toMatch(/RangeError: out of range\n\s+at inner .*foundation\.test\.ts/);
  });
});

describe('streaming and progress', () => {
  it('iterates a generator function with for await', async () => {
    const got: number[] = [];
    for await (const v of client.countdown(5)) got.push(v);
    expect(got).toEqual([5, 4, 3, 2, 1]);
  });

  it('refuses to call a generator function as a unary call', async () => {
    await expect(client.call('countdown', [3])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a slow consumer holds the producer back (bounded buffering at the gateway)', async () => {
    const total = 2000;
    const size = 64 * 1024;
    let consumed = 0;
    for await (const chunk of client.firehose(total, size)) {
      expect(chunk.length).toBe(size);
      consumed++;
      await sleep(15);
      if (consumed === 40) break;
    }
    // With no backpressure the node would have produced all 2000 (128 MiB) by now.
    // Credit (16) + the gateway's write buffer (16) + HTTP/2 windows bound it.
    expect(seen.produced).toBeLessThan(consumed + 120);
    // Breaking out cancelled the call; the gateway and node are clean.
    await waitFor('no calls in flight', () => gw.dispatcher.inFlight === 0 && node.activeCalls === 0);
  });

  it('delivers progress reports to the caller', async () => {
    const reports: Array<[number, string]> = [];
    const result = await client.call('withProgress', [4], { onProgress: (f, m) => reports.push([f, m]) });
    expect(result).toBe('done');
    expect(reports).toEqual([
      [0.25, 'step 1'],
      [0.5, 'step 2'],
      [0.75, 'step 3'],
      [1, 'step 4'],
    ]);
  });
});

describe('deadlines and cancellation', () => {
  afterEach(() => {
    seen.aborts.length = 0;
  });

  it('a passed deadline gives DeadlineExceeded and fires the handler signal', async () => {
    const t0 = Date.now();
    await expect(client.with({ timeout: 300 }).waitForAbort('deadline')).rejects.toMatchObject({ name: 'DeadlineExceeded' });
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(3000);
    await waitFor('the handler to see the abort', () => seen.aborts.some((a) => a.fn === 'deadline'));
    expect(seen.aborts.find((a) => a.fn === 'deadline')!.reason).toBe('DeadlineExceeded');
  });

  it("a deadline the gateway enforces reaches the handler as DeadlineExceeded, even before the node's own timer", async () => {
    // The gateway runs on fake time a day ahead: the node's own timer for the deadline it
    // is sent cannot fire, so only the gateway's cancel frame can end the call.
    const clock = new FakeClock({ epochMs: Date.now() + 86_400_000 });
    const timedGw = await startGateway({ clock, defaultTimeoutMs: 300 });
    const timed = await startNode(timedGw.address, (n) => n.serve(new Lab()), { nodeId: 'timed', telemetry: false });
    const timedClient = connect(timedGw.address);
    try {
      const outcome = timedClient.call('waitForAbort', ['gateway-deadline']).catch((e: unknown) => e);
      await waitFor('the call to reach the node', () => timed.activeCalls === 1);
      expect(timedGw.dispatcher.inFlight).toBe(1);
      clock.advance(300);
      expect(await outcome).toMatchObject({ name: 'DeadlineExceeded' });
      await waitFor('the handler to see the abort', () => seen.aborts.some((a) => a.fn === 'gateway-deadline'));
      expect(seen.aborts.find((a) => a.fn === 'gateway-deadline')!.reason).toBe('DeadlineExceeded');
    } finally {
      timedClient.close();
      await timed.stop();
      await timedGw.stop();
    }
  });

  it('a client abort fires the handler signal', async () => {
    const ac = new AbortController();
    const p = client.call('waitForAbort', ['abort'], { signal: ac.signal });
    await waitFor('the call to reach the node', () => node.activeCalls === 1);
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'Cancelled' });
    await waitFor('the handler to see the abort', () => seen.aborts.some((a) => a.fn === 'abort'));
    expect(seen.aborts.find((a) => a.fn === 'abort')!.reason).toBe('Cancelled');
  });
});

describe('admission and bad input', () => {
  it('overflowing maxConcurrent + queueSize gives Overloaded', async () => {
    narrowGate = new Promise((resolve) => (openNarrowGate = resolve));
    const ok: unknown[] = [];
    const refused: any[] = [];
    const calls = [1, 2, 3, 4].map(() => client.narrow().then((v: unknown) => ok.push(v), (e: unknown) => refused.push(e)));
    // Two fit (one running, one queued on the node); the others are refused while those are held.
    await waitFor('two refusals', () => refused.length === 2);
    expect(ok).toEqual([]);
    openNarrowGate();
    await Promise.all(calls);
    expect(ok).toEqual(['ok', 'ok']);
    expect(refused).toHaveLength(2);
    for (const err of refused) {
      expect(err).toMatchObject({ name: 'Overloaded', code: 'OVERLOADED', retryable: true });
      expect(err.retryAfterMs).toBeGreaterThan(0);
    }
  });

  it('malformed argument bytes give InvalidArgument and the gateway keeps serving', async () => {
    const Raw = grpc.makeGenericClientConstructor(GatewayService, 'Gateway');
    const raw = new Raw(gw.address, grpc.credentials.createInsecure()) as any;
    const call = (args: Buffer) =>
      new Promise<{ err: grpc.ServiceError | null; reply: any }>((resolve) => raw.call({ function: 'add', args, options: undefined }, (err: grpc.ServiceError | null, reply: any) => resolve({ err, reply })));
    for (const bad of [Buffer.from([0xc1]), Buffer.from([0x92, 0x01]), encodeArgs([]).subarray(0, 0).fill(0), Buffer.from([0x2a])]) {
      const { err } = await call(bad.length ? bad : Buffer.from([0xd9]));
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      const detail = ErrorDetail.decode(err!.metadata.get(ERROR_TRAILER)[0] as Buffer);
      expect(detail.code).toBe('INVALID_ARGUMENT');
      expect(detail.message).toMatch(/add: /);
    }
    const { err, reply } = await call(encodeArgs([20, 22]));
    expect(err).toBeNull();
    expect(decode(reply.result)).toBe(42);
    raw.close();
    expect(await client.add(1, 1)).toBe(2);
  });

  it('an unreachable gateway fails fast instead of hanging', async () => {
    const lost = new Client('127.0.0.1:1');
    const err = await lost.call('add', [1, 2], { timeout: 5000 }).then(() => undefined, (e: unknown) => e);
    // Not a statement about nodes: the gateway itself could not be reached, and retrying is safe.
    expect(err).toMatchObject({ name: 'GatewayUnavailable', code: 'GATEWAY_UNAVAILABLE', retryable: true, grpcStatus: grpc.status.UNAVAILABLE });
    expect((err as Error).message).toContain('127.0.0.1:1');
    lost.close();
  });
});
