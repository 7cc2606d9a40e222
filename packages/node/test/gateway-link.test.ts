import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger, ErrorDetail, FunctionSpec, RateLimited, toServiceError, type EasyRemoteError, type GatewayFrame, type NodeFrame } from '@easyremote/protocol';
import { CallRunner } from '../src/call-runner.js';
import { GatewayLink, type GatewayLinkHelper } from '../src/gateway-link.js';
import type { LinkTransport } from '../src/link-transport.js';
import { FakeClock, flush, invokeOf, manualHandler } from './fakes.js';

const LEASE_MS = 1000;
const HEARTBEAT_MS = 200;

class FakeStream extends EventEmitter {
  readonly written: NodeFrame[] = [];
  cancelled = false;
  ended = false;
  readonly writableNeedDrain = false;
  write(frame: NodeFrame): boolean {
    this.written.push(frame);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  cancel(): void {
    this.cancelled = true;
  }
  /** A frame from the gateway. */
  gateway(frame: GatewayFrame): void {
    this.emit('data', frame);
  }
}

/** The link's log lines, parsed. */
function captured() {
  const entries: Array<Record<string, unknown>> = [];
  const logger = createLogger('node', { level: 'debug', format: 'json', destination: { write: (line: string) => entries.push(JSON.parse(line)) } });
  return { entries, logger };
}

function setup(logger = captured().logger) {
  const streams: FakeStream[] = [];
  const transport: LinkTransport = {
    open: () => {
      const s = new FakeStream();
      streams.push(s);
      return s;
    },
    close: () => undefined,
  };
  let monotonic = 0;
  const clock = new FakeClock();
  const runner = new CallRunner({ nodeId: 'n1', clock });
  const f = manualHandler();
  runner.add({ name: 'f', handler: f.handler, thisArg: undefined, options: { maxConcurrent: 1, queueSize: 1 }, kind: 'unary' });
  const events: string[] = [];
  const helper: GatewayLinkHelper = {
    registration: () => ({ nodeId: 'n1', functions: [FunctionSpec.fromPartial({ name: 'f', kind: 'unary' })], capabilities: undefined, protocolVersion: 1, instanceId: 'i1', gateways: [], directAddress: '' }),
    heartbeat: () => ({ cpuPercent: 0, memoryUsedBytes: 0, memoryTotalBytes: 0, gpus: [], functions: runner.load(), hasTelemetry: false, gateways: [] }),
    calls: runner,
    registered: (_l, gatewayId) => events.push(`registered:${gatewayId}`),
    refused: (_l, err: EasyRemoteError, retrying) => events.push(`refused:${err.code}:${retrying}`),
    disconnected: (_l, reason) => events.push(`disconnected:${reason}`),
    drainRequested: () => events.push('drain'),
    error: (err) => events.push(`error:${err.message}`),
  };
  // Frames are written as they are queued, so a test sees each one at once.
  const link = new GatewayLink({ address: 'gw:1', transport, now: () => monotonic, backoff: { initialMs: 100, maxMs: 100, random: () => 0 }, deferFlush: (flush) => flush(), logger }, helper);
  const register = (s: FakeStream) =>
    s.gateway({ registered: { accepted: true, refusal: undefined, heartbeatMs: HEARTBEAT_MS, leaseMs: LEASE_MS, maxPayloadBytes: 0, gatewayId: 'gw' } });
  return { link, runner, f, streams, events, register, advance: (ms: number) => (monotonic += ms) };
}

describe('GatewayLink', () => {
  beforeEach(() => void vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] }));
  afterEach(() => void vi.useRealTimers());

  it('registers on connect, answers pings, hands invocations to the runner and heartbeats its load', async () => {
    const { link, f, streams, events, register } = setup();
    link.start();
    const s = streams[0]!;
    expect(s.written[0]!.register).toMatchObject({ nodeId: 'n1', instanceId: 'i1' });
    register(s);
    expect(events).toEqual(['registered:gw']);
    expect(link.isRegistered).toBe(true);
    s.gateway({ ping: { nonce: 7 } });
    expect(s.written.at(-1)).toEqual({ pong: { nonce: 7 } });
    s.gateway({ invoke: invokeOf('f', ['a']) });
    expect(f.args()).toEqual(['a']);
    vi.advanceTimersByTime(HEARTBEAT_MS);
    expect(s.written.at(-1)!.heartbeat!.functions).toEqual([{ name: 'f', inFlight: 1, queued: 0 }]);
    f.started[0]!.resolve('A');
    await flush();
    expect(s.written.at(-1)!.result).toBeDefined();
    link.close();
  });

  it('stays live while the gateway pings within the lease', () => {
    const { link, streams, register, advance } = setup();
    link.start();
    register(streams[0]!);
    for (let i = 0; i < 5; i++) {
      advance(LEASE_MS - 1);
      streams[0]!.gateway({ ping: { nonce: i } });
    }
    expect(link.isLive()).toBe(true);
    link.close();
  });

  it('never takes a lease shorter than two ping intervals (a gateway configured with one)', () => {
    const { link, streams, advance } = setup();
    link.start();
    streams[0]!.gateway({ registered: { accepted: true, refusal: undefined, heartbeatMs: 200, leaseMs: 100, maxPayloadBytes: 0, gatewayId: 'gw' } });
    advance(400);
    expect(link.isLive()).toBe(true);
    advance(1);
    expect(link.isLive()).toBe(false);
    link.close();
  });

  it('silent past the lease: its calls are fenced, nothing is sent for them, and it reconnects', async () => {
    const { link, runner, f, streams, events, register, advance } = setup();
    link.start();
    const s = streams[0]!;
    register(s);
    const a = invokeOf('f', ['a']);
    const b = invokeOf('f', ['b']);
    s.gateway({ invoke: a });
    s.gateway({ invoke: b });
    expect(runner.activeCalls).toBe(2);
    const written = s.written.length;

    // The process is stopped for longer than the lease; then the running call finishes.
    advance(LEASE_MS + 500);
    f.started[0]!.resolve('A');
    await flush();
    expect(s.written.length).toBe(written); // no result for a
    expect(f.args()).toEqual(['a']); // b never started
    expect(f.started[0]!.signal.reason).toMatchObject({ code: 'NODE_LOST' });
    expect(s.cancelled).toBe(true);
    expect(runner.activeCalls).toBe(0);
    expect(events.at(-1)).toMatch(/^disconnected:heard nothing from the gateway for 1500 ms \(lease 1000 ms\)/);
    expect(link.isLive()).toBe(false);

    vi.advanceTimersByTime(100);
    expect(streams).toHaveLength(2);
    expect(streams[1]!.written[0]!.register).toBeDefined();
    register(streams[1]!);
    expect(link.isLive()).toBe(true);
    link.close();
  });

  it('frames that arrive after a gap longer than the lease are not acted on: the stream is dead', () => {
    const { link, f, streams, events, register, advance } = setup();
    link.start();
    const s = streams[0]!;
    register(s);
    advance(LEASE_MS + 1);
    // Held up while the process was stopped: a ping, then an invoke.
    s.gateway({ ping: { nonce: 1 } });
    s.gateway({ invoke: invokeOf('f', ['late']) });
    expect(s.written.some((w) => w.pong)).toBe(false);
    expect(f.args()).toEqual([]);
    expect(events.at(-1)).toMatch(/^disconnected:heard nothing/);
    link.close();
  });

  it('the heartbeat tick after a stop finds the lease over and sends no heartbeat', () => {
    const { link, streams, events, register, advance } = setup();
    link.start();
    const s = streams[0]!;
    register(s);
    advance(LEASE_MS + 1);
    vi.advanceTimersByTime(HEARTBEAT_MS);
    expect(s.written.some((w) => w.heartbeat)).toBe(false);
    expect(events.at(-1)).toMatch(/^disconnected:heard nothing/);
    link.close();
  });

  it('a stream error fences the calls that came on it; a refusal for a duplicate id retries, any other closes the link', async () => {
    const { link, runner, f, streams, events, register } = setup();
    link.start();
    register(streams[0]!);
    streams[0]!.gateway({ invoke: invokeOf('f', ['a']) });
    const written = streams[0]!.written.length;
    streams[0]!.emit('error', new Error('boom'));
    expect(f.started[0]!.signal.aborted).toBe(true);
    f.started[0]!.resolve('A');
    await flush();
    expect(streams[0]!.written.length).toBe(written);
    expect(runner.activeCalls).toBe(0);

    vi.advanceTimersByTime(100);
    const refusal = (code: string): GatewayFrame => ({
      registered: { accepted: false, refusal: ErrorDetail.fromPartial({ code, message: 'no' }), heartbeatMs: 0, leaseMs: 0, maxPayloadBytes: 0, gatewayId: 'gw' },
    });
    streams[1]!.gateway(refusal('REGISTRATION_REFUSED'));
    expect(events).toContain('refused:REGISTRATION_REFUSED:true');
    vi.advanceTimersByTime(100);
    expect(streams).toHaveLength(3);
    streams[2]!.gateway(refusal('UNAUTHENTICATED'));
    expect(events.at(-1)).toBe('refused:UNAUTHENTICATED:false');
    expect(streams[2]!.ended).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(streams).toHaveLength(3);
  });

  it('logs its lifecycle: connecting, registered, disconnected, reconnecting, refused', () => {
    const { entries, logger } = captured();
    const { link, streams, register } = setup(logger);
    link.start();
    register(streams[0]!);
    streams[0]!.emit('error', new Error('boom'));
    vi.advanceTimersByTime(100);
    streams[1]!.gateway({
      registered: { accepted: false, refusal: ErrorDetail.fromPartial({ code: 'UNAUTHENTICATED', message: 'node token not accepted' }), heartbeatMs: 0, leaseMs: 0, maxPayloadBytes: 0, gatewayId: 'gw' },
    });
    const lines = entries.map(({ level, msg, component, gateway, ...rest }) => {
      expect(component).toBe('node');
      expect(gateway).toBe('gw:1');
      delete rest.time;
      delete rest.pid;
      delete rest.hostname;
      return { level, msg, ...rest };
    });
    expect(lines).toEqual([
      { level: 'info', msg: 'connecting' },
      { level: 'info', msg: 'registered', gatewayId: 'gw', functions: ['f'] },
      { level: 'warn', msg: 'disconnected', reason: 'stream error: boom' },
      { level: 'info', msg: 'reconnecting', attempt: 1, delayMs: 50 },
      { level: 'error', msg: 'registration refused', code: 'UNAUTHENTICATED', reason: 'node token not accepted' },
    ]);
    expect(typeof entries[0]!.time).toBe('string');
  });

  it('a taken node id is retried no sooner than the retry-after the gateway gave, plus the backoff (50 ms here)', () => {
    const { entries, logger } = captured();
    const { link, streams, events } = setup(logger);
    link.start();
    streams[0]!.gateway({
      registered: {
        accepted: false,
        refusal: ErrorDetail.fromPartial({ code: 'REGISTRATION_REFUSED', message: 'node id n1 is already connected from ipv4:10.0.0.2:5000', retryAfterMs: 1000 }),
        heartbeatMs: 0,
        leaseMs: 0,
        maxPayloadBytes: 0,
        gatewayId: 'gw',
      },
    });
    expect(events).toEqual(['refused:REGISTRATION_REFUSED:true', 'disconnected:registration refused: node id n1 is already connected from ipv4:10.0.0.2:5000']);
    expect(entries.find((e) => e.msg === 'registration refused, retrying')).toMatchObject({ level: 'warn', code: 'REGISTRATION_REFUSED', retryAfterMs: 1000 });
    expect(entries.at(-1)).toMatchObject({ msg: 'reconnecting', attempt: 1, delayMs: 1050, reason: 'registration refused: node id n1 is already connected from ipv4:10.0.0.2:5000' });
    vi.advanceTimersByTime(1049);
    expect(streams).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(streams).toHaveLength(2);
    link.close();
  });

  it('a stream ended RATE_LIMITED is logged as rate-limited and retried after its retry-after', () => {
    const { entries, logger } = captured();
    const { link, streams, events } = setup(logger);
    link.start();
    const limited = new RateLimited('nodes-a is over its limit of 1 registrations per second', { retryAfterMs: 500 });
    streams[0]!.emit('error', Object.assign(new Error(`8 RESOURCE_EXHAUSTED: ${limited.message}`), toServiceError(limited)));
    expect(events[0]).toBe('refused:RATE_LIMITED:true');
    expect(entries.find((e) => e.msg === 'rate-limited')).toMatchObject({ level: 'warn', code: 'RATE_LIMITED', reason: limited.message, retryAfterMs: 500 });
    vi.advanceTimersByTime(549);
    expect(streams).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(streams).toHaveLength(2);
    link.close();
  });
});
