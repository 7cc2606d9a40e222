// Look-aside mode end to end: a client asks the gateway for a node and calls it directly
// (the node's own listener, ComputeNode `direct`), falling back to the gateway where it
// cannot. Errors, deadlines, cancellation and streaming are checked on the unary and the
// streaming path, as in proxy mode.
import { createServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type DynamicClient } from '@easyremote/client';
import type { Gateway, GatewayOptions } from '@easyremote/gateway';
import { currentCall, type ComputeNode, type ComputeNodeOptions } from '@easyremote/node';
import { CertificateLab } from './support/certificates.js';
import { freePort, startGateway, startNode, waitFor } from './support/cluster.js';
import { grpcFrame, h2Request, rawCall, rawGatewayClient, RawSession } from './support/raw.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(options: GatewayOptions = {}): Promise<Gateway> {
  // No startup grace: an unknown function is refused at once.
  const gw = await startGateway({ startupGraceMs: 0, ...options });
  cleanups.push(() => gw.stop());
  return gw;
}

async function node(gw: Gateway, nodeId: string, setup: (n: ComputeNode) => void, options: Partial<ComputeNodeOptions> = {}): Promise<ComputeNode> {
  const n = await startNode(gw.address, setup, { nodeId, telemetry: false, direct: { listen: '127.0.0.1:0' }, ...options });
  cleanups.push(() => n.stop());
  return n;
}

function client(address: string, options: Parameters<typeof connect>[1] = {}): DynamicClient {
  const c = connect(address, { mode: 'look-aside', ...options });
  cleanups.push(() => c.close());
  return c;
}

/** Calls the gateway itself counted (live figures): look-aside calls must not move them. */
const gatewayCalls = (gw: Gateway) => gw.metrics.live.overall().calls;

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe('the data path', () => {
  it("look-aside calls reach the node without passing through the gateway's call path (unary and stream)", async () => {
    const gw = await gateway({ httpPort: 0 });
    await node(gw, 'n1', (n) =>
      n.register('who', () => currentCall().nodeId).register('count', async function* (k: number) {
        for (let i = 0; i < k; i++) yield i;
      }),
    );
    const c = client(gw.address);
    expect(await c.who()).toBe('n1');
    // Sequential calls within the pick's TTL (1 s) reuse one pick: no round trip to the gateway each.
    expect(await c.who()).toBe('n1');
    expect(gw.api.backends()[0]!.picks).toBe(1);
    expect(await collect(c.count(4))).toEqual([0, 1, 2, 3]);
    expect(await Promise.all([c.who(), c.who(), c.who()])).toEqual(['n1', 'n1', 'n1']);
    const prom = async () => (await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text()).split('\n').filter((l) => l.startsWith('easyremote_calls_total'));
    expect(gatewayCalls(gw)).toBe(0);
    expect(await prom()).toEqual([]);
    await waitFor('the outcomes to reach the gateway', () => gw.api.backends()[0]?.outcomes === 6);
    // The same call through the gateway moves the counters (they are the right ones to watch).
    const proxy = connect(gw.address);
    cleanups.push(() => proxy.close());
    expect(await proxy.who()).toBe('n1');
    expect(gatewayCalls(gw)).toBe(1);
    expect((await prom()).length).toBeGreaterThan(0);
  });

  it('a node whose direct address cannot be reached is served through the gateway, and remembered', async () => {
    const gw = await gateway();
    // An address that accepts connections and never answers: connecting to it stalls until the client gives up.
    const dials: Socket[] = [];
    const silent = createServer((s) => dials.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const s of dials) s.destroy();
      return new Promise((r) => silent.close(r));
    });
    const port = (silent.address() as { port: number }).port;
    await node(gw, 'behind-nat', (n) => n.register('who', () => currentCall().nodeId), { direct: { listen: '127.0.0.1:0', advertise: `127.0.0.1:${port}` } });
    const c = client(gw.address, { lookAside: { connectTimeoutMs: 300 } });
    const t0 = Date.now();
    expect(await c.who()).toBe('behind-nat');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(gatewayCalls(gw)).toBe(1);
    expect(dials.length).toBeGreaterThan(0);
    const dialled = dials.length;
    // Remembered: the next calls go through the gateway at once, without dialling again.
    const t1 = Date.now();
    expect(await c.who()).toBe('behind-nat');
    expect(await collect(c.stream('who'))).toEqual(['behind-nat']);
    expect(Date.now() - t1).toBeLessThan(250);
    expect(gatewayCalls(gw)).toBe(3);
    expect(dials.length).toBe(dialled);
  });

  it('a node with no direct address is served through the gateway', async () => {
    const gw = await gateway();
    await node(gw, 'plain', (n) => n.register('who', () => currentCall().nodeId), { direct: undefined });
    const c = client(gw.address);
    expect(await c.who()).toBe('plain');
    expect(gatewayCalls(gw)).toBe(1);
  });

  it('calls from the gateway and from clients share the one set of limits on the node', async () => {
    const gw = await gateway();
    let running = 0;
    let most = 0;
    await node(gw, 'n1', (n) =>
      n.register(
        'work',
        async () => {
          most = Math.max(most, ++running);
          await new Promise((r) => setTimeout(r, 200));
          running--;
          return 'done';
        },
        { maxConcurrent: 1, queueSize: 4 },
      ),
    );
    const direct = client(gw.address);
    const proxy = connect(gw.address);
    cleanups.push(() => proxy.close());
    const t0 = Date.now();
    expect(await Promise.all([direct.work(), proxy.work(), direct.work()])).toEqual(['done', 'done', 'done']);
    expect(most).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(550);
  });

  it("the direct port checks its limits before any work and names them; a principal's own limits apply (unary and stream)", async () => {
    const gw = await gateway();
    let ran = 0;
    const n = await node(
      gw,
      'n1',
      (n) =>
        n.register('size', (b: Buffer) => (ran++, b.length)).register('sizes', function* (b: Buffer) {
          ran++;
          yield b.length;
        }).register('nap', () => new Promise((r) => setTimeout(() => r('rested'), 300))),
      { direct: { listen: '127.0.0.1:0', maxPayloadBytes: 2 ** 20, auth: { principals: [{ name: 'tenant', token: 'tenant-token', role: 'client', maxConcurrent: 1 }] } } },
    );
    const c = connect(n.directAddress, { token: 'tenant-token' });
    cleanups.push(() => c.close());
    const big = Buffer.alloc(2 ** 20 + 100);
    const tooLarge = { code: 'PAYLOAD_TOO_LARGE', limit: { name: 'max_payload_bytes', limit: 2 ** 20 } };
    await expect(c.size(big)).rejects.toMatchObject(tooLarge);
    await expect(collect(c.sizes(big))).rejects.toMatchObject(tooLarge);
    await expect(c.call('size', [], { metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', limit: { name: 'max_metadata_entries', limit: 64, actual: 65 } });
    expect(ran).toBe(0);
    const first = c.call('nap');
    await expect(c.nap()).rejects.toMatchObject({ code: 'RATE_LIMITED', limit: { name: 'principal_max_concurrent', limit: 1 } });
    await expect(collect(c.stream('sizes', [Buffer.alloc(1)]))).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(await first).toBe('rested');
    expect(await collect(c.sizes(Buffer.alloc(3)))).toEqual([3]);
  });

  it('large arguments and results round-trip directly', async () => {
    const gw = await gateway();
    await node(gw, 'n1', (n) => n.register('echo', (b: Buffer) => b));
    const c = client(gw.address);
    const big = Buffer.alloc(3 * 2 ** 20, 7);
    expect((await c.echo(big)).equals(big)).toBe(true);
    expect(gatewayCalls(gw)).toBe(0);
  });
});

describe('errors, deadlines, cancellation and streaming as in proxy mode', () => {
  let gw: Gateway;
  let c: DynamicClient;
  const aborted: string[] = [];
  const finished: string[] = [];
  const shared: Array<() => unknown> = [];
  afterAll(async () => {
    for (const f of shared.reverse()) await f();
  });
  beforeAll(async () => {
    gw = await startGateway({ startupGraceMs: 0 });
    const n = await startNode(
      gw.address,
      (n) =>
        n
          .register('fail', () => {
            throw new TypeError('bad input');
          })
          .register('fail_stream', async function* () {
            yield 1;
            throw new RangeError('too far');
          })
          .register('slow', async (tag: string) => {
            currentCall().signal.addEventListener('abort', () => aborted.push(tag));
            await new Promise((r) => setTimeout(r, 3000));
            return 'late';
          })
          .register('ticks', async function* (tag: string) {
            currentCall().signal.addEventListener('abort', () => aborted.push(tag));
            try {
              for (let i = 0; ; i++) {
                yield i;
                await new Promise((r) => setTimeout(r, 50));
              }
            } finally {
              finished.push(tag);
            }
          })
          .register('progress', async () => {
            currentCall().progress(0.5, 'half');
            return currentCall().metadata['x-tenant'];
          }),
      { nodeId: 'n1', telemetry: false, direct: { listen: '127.0.0.1:0' } },
    );
    c = connect(gw.address, { mode: 'look-aside' });
    shared.push(() => gw.stop(), () => n.stop(), () => c.close());
  });

  it('a handler that throws: a RemoteError with its name and stack (unary and stream)', async () => {
    const before = gatewayCalls(gw);
    await expect(c.fail()).rejects.toMatchObject({ code: 'REMOTE_ERROR', remoteName: 'TypeError', message: 'bad input', nodeId: 'n1' });
    const got: unknown[] = [];
    await expect(
      (async () => {
        for await (const v of c.fail_stream()) got.push(v);
      })(),
    ).rejects.toMatchObject({ code: 'REMOTE_ERROR', remoteName: 'RangeError', message: 'too far' });
    expect(got).toEqual([1]);
    expect(gatewayCalls(gw)).toBe(before);
  });

  it('an unknown function: FUNCTION_NOT_FOUND (unary and stream), as the gateway answers it', async () => {
    await expect(c.missing()).rejects.toMatchObject({ code: 'FUNCTION_NOT_FOUND', message: 'function "missing" is not registered' });
    await expect(collect(c.stream('missing'))).rejects.toMatchObject({ code: 'FUNCTION_NOT_FOUND' });
    // A generator called with one-result semantics, refused by the node as by the gateway.
    await expect(c.call('ticks', ['x'])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/is a stream \(generator\) function/) });
  });

  it('a deadline: DEADLINE_EXCEEDED at the deadline, and the handler is told (unary and stream)', async () => {
    const before = gatewayCalls(gw);
    const t0 = Date.now();
    await expect(c.call('slow', ['deadline-unary'], { timeout: 300 })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED', message: 'slow did not finish before its deadline (node n1)' });
    expect(Date.now() - t0).toBeLessThan(1500);
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const v of c.stream<number>('ticks', ['deadline-stream'], { timeout: 300 })) got.push(v);
      })(),
    ).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(got.length).toBeGreaterThan(0);
    await waitFor('both handlers to see their signal', () => aborted.includes('deadline-unary') && aborted.includes('deadline-stream'));
    expect(gatewayCalls(gw)).toBe(before);
  });

  it('cancellation: an aborted call is CANCELLED and its handler told; breaking out of a stream ends the generator', async () => {
    const before = gatewayCalls(gw);
    const ac = new AbortController();
    const pending = c.call('slow', ['cancel-unary'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 150);
    await expect(pending).rejects.toMatchObject({ code: 'CANCELLED' });
    await waitFor('the unary handler to see its signal', () => aborted.includes('cancel-unary'));
    const ac2 = new AbortController();
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const v of c.stream<number>('ticks', ['cancel-stream'], { signal: ac2.signal })) {
          got.push(v);
          if (got.length === 3) ac2.abort();
        }
      })(),
    ).rejects.toMatchObject({ code: 'CANCELLED' });
    await waitFor('the stream handler to see its signal', () => aborted.includes('cancel-stream'));
    for await (const v of c.stream<number>('ticks', ['break'])) if (v === 2) break;
    await waitFor("the generator's finally block", () => finished.includes('break'));
    expect(gatewayCalls(gw)).toBe(before);
  });

  it('progress and metadata reach the caller and the handler', async () => {
    const seen: Array<[number, string]> = [];
    expect(await c.call('progress', [], { metadata: { 'x-tenant': 'acme' }, onProgress: (f, m) => seen.push([f, m]) })).toBe('acme');
    expect(seen).toEqual([[0.5, 'half']]);
  });
});

describe("the node's direct port: the gateway's token and TLS rules", () => {
  it('client tokens are checked on the headers; the caller reaches the handler by name (unary and stream)', async () => {
    const auth = { clientTokens: ['client-token-1'], nodeTokens: ['node-token-1'] };
    const gw = await gateway({ auth });
    const n = await node(gw, 'n1', (n) => n.register('caller', () => currentCall().caller).register('callers', function* () {
      yield currentCall().caller;
    }), { token: 'node-token-1', direct: { listen: '127.0.0.1:0', auth: { clientTokens: ['client-token-1'] } } });
    const c = client(gw.address, { token: 'client-token-1' });
    expect(await c.caller()).toBe('client-1');
    expect(await collect(c.callers())).toEqual(['client-1']);
    expect(gatewayCalls(gw)).toBe(0);
    // Straight to the node without a token: refused before the request is read.
    const raw = rawGatewayClient(n.directAddress);
    cleanups.push(() => raw.close());
    expect(await rawCall(raw, { function: 'caller' })).toMatchObject({ status: 16, detail: { code: 'UNAUTHENTICATED' } });
    const anonymous = connect(n.directAddress);
    cleanups.push(() => anonymous.close());
    await expect(collect(anonymous.callers())).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: 'missing client token: send metadata authorization: Bearer <token>' });
    await expect(anonymous.caller()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('TLS on the direct port, verified by the client with the CA given for direct addresses', async () => {
    const lab = new CertificateLab();
    cleanups.push(() => lab.remove());
    const ca = lab.ca('node-ca');
    const cert = lab.issue(ca, 'node', { cn: 'node', san: 'IP:127.0.0.1', usage: 'serverAuth' });
    const gw = await gateway();
    await node(gw, 'n1', (n) => n.register('who', () => currentCall().nodeId), { direct: { listen: '127.0.0.1:0', tls: { cert: cert.cert, key: cert.key } } });
    const c = client(gw.address, { lookAside: { tls: { ca: ca.cert } } });
    expect(await c.who()).toBe('n1');
    expect(gatewayCalls(gw)).toBe(0);
  });

  it('listening beyond loopback needs TLS and client tokens (or insecure); bad addresses are refused when the node is built', async () => {
    const { ComputeNode } = await import('@easyremote/node');
    const make = (direct: ComputeNodeOptions['direct']) => new ComputeNode({ gateway: '127.0.0.1:1', telemetry: false, direct });
    expect(() => make({ listen: '0.0.0.0:0' })).toThrow('refusing to listen directly on 0.0.0.0 without TLS and authentication: missing TLS (direct.tls: { cert, key }), client tokens (direct.auth)');
    expect(() => make({ listen: '0.0.0.0:0', insecure: true })).not.toThrow();
    expect(() => make({ listen: 'nope' })).toThrow('direct.listen: expected host:port (an IPv6 host in brackets), got "nope"');
    expect(() => make({ listen: '127.0.0.1:0', advertise: '::1:80' })).toThrow(/direct\.advertise/);
    expect(() => connect('127.0.0.1:1', { mode: 'sideways' as never })).toThrow(`mode must be 'proxy' or 'look-aside', got "sideways"`);
    expect(() => connect('127.0.0.1:1', { mode: 'look-aside', lookAside: { connectTimeoutMs: -1 } })).toThrow('lookAside.connectTimeoutMs must be a number >= 0, got -1');
    const port = await freePort();
    const gw = await gateway();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    const n = new ComputeNode({ gateway: gw.address, telemetry: false, direct: { listen: `127.0.0.1:${port}` } });
    n.register('f', () => 1);
    await expect(n.start()).rejects.toThrow(`cannot listen for direct calls on 127.0.0.1:${port}`);
  });
});

describe("the node's direct Session: proto/session.md's rules", () => {
  it('a call id in flight is refused, an undecodable frame is rejected alone, and a draining node says goaway', async () => {
    const gw = await gateway();
    const n = await node(gw, 'n1', (n) => n.register('nap', (ms: number) => new Promise((r) => setTimeout(() => r(ms), ms))));
    const s = new RawSession(n.directAddress);
    cleanups.push(() => s.close());
    const args = Buffer.from([0x91, 0xcd, 0x01, 0x2c]); // [300]
    s.send({ call: { callId: 1, function: 'nap', args } });
    s.send({ call: { callId: 1, function: 'nap', args } });
    await s.until('the refusal of the second call 1', () => s.frames.some((f) => f.rejected !== undefined));
    expect(s.frames.find((f) => f.rejected)!.rejected!.error).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'call id 1 is already in flight on this session' });
    s.stream.write(Buffer.from([0xff, 0xff, 0xff]));
    await s.until('the rejection of the bad frame', () => s.frames.filter((f) => f.rejected !== undefined).length === 2);
    await s.until('the result of call 1', () => s.frames.some((f) => f.result?.callId === 1));
    expect(s.frames.find((f) => f.result)!.result).toMatchObject({ callId: 1, nodeId: 'n1', cached: false });
    // Bytes that are not a CallRequest, on Call and CallStream: INVALID_ARGUMENT with the trailer, as from the gateway.
    for (const method of ['Call', 'CallStream']) {
      const exchange = h2Request(n.directAddress, `/easyremote.v1.Gateway/${method}`, grpcFrame(Buffer.from([0xff, 0xff, 0xff])));
      cleanups.push(() => exchange.close());
      expect(await exchange.done).toMatchObject({ status: 3, detail: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^the request is not a CallRequest: /) } });
    }
    s.send({ call: { callId: 2, function: 'nap', args } });
    // Drained with call 2 running: the node answers it, takes nothing new, then stops.
    await new Promise((r) => setTimeout(r, 100));
    void n.drain();
    await s.until('the goaway', () => s.frames.some((f) => f.goaway !== undefined));
    s.send({ call: { callId: 3, function: 'nap', args } });
    await s.until('call 3 refused', () => s.frames.some((f) => f.error?.callId === 3));
    expect(s.frames.find((f) => f.error?.callId === 3)!.error!.error).toMatchObject({ code: 'GATEWAY_UNAVAILABLE' });
    await s.until('call 2 answered', () => s.frames.some((f) => f.result?.callId === 2));
  });
});
