// The client's choice of gateway and its resends, without a network: gateways are
// stand-ins that record the calls sent to them and answer as a test tells them, and time
// is a number the test moves (GatewayHealth and pickGateway take it as an argument).
import { describe, expect, it } from 'vitest';
import { Cancelled, EasyRemoteError, GatewayLost, GatewayUnavailable, IdempotencyMismatch, NoNodeAvailable, SegmentedBytes, type ErrorCode } from '@easyremote/protocol';
import { FailoverCall, type CallRequest, type CallRouting } from '../src/failover-call.js';
import type { GatewayConnection } from '../src/gateway-connection.js';
import { GatewayHealth, INITIAL_RETRY_MS, MAX_RETRY_MS } from '../src/gateway-health.js';
import { pickGateway } from '../src/gateway-set.js';
import { IdempotencyKnowledge, MAX_KNOWN_FUNCTIONS } from '../src/idempotency.js';
import type { CallListener, SessionRequest } from '../src/session.js';

/** A seeded uniform source (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('GatewayHealth', () => {
  it('goes down on a failure, lets exactly one call try after the delay, and is up again on success', () => {
    const h = new GatewayHealth(() => 1);
    expect(h.acquire(0)).toBe(true);
    h.failed(1000);
    expect(h.state).toBe('down');
    expect(h.retryAt).toBe(1000 + INITIAL_RETRY_MS);
    expect(h.acquire(1099)).toBe(false);
    expect(h.acquire(1100)).toBe(true);
    expect(h.state).toBe('trial');
    expect(h.acquire(1101)).toBe(false); // one trial at a time
    h.succeeded();
    expect([h.state, h.acquire(1102)]).toEqual(['up', true]);
  });

  it('doubles its delay per failure in a row up to MAX_RETRY_MS, half of each random, and starts again after a success', () => {
    const low = new GatewayHealth(() => 0);
    const delays: number[] = [];
    for (let i = 0, now = 0; i < 6; i++, now += 10_000) {
      low.failed(now);
      delays.push(low.retryAt - now);
    }
    expect(delays).toEqual([50, 100, 200, 400, 500, 500]);
    const high = new GatewayHealth(() => 0.999999);
    for (let i = 0; i < 8; i++) high.failed(0);
    expect(high.retryAt).toBeCloseTo(MAX_RETRY_MS, 2);
    high.succeeded();
    high.failed(0);
    expect(high.retryAt).toBeCloseTo(INITIAL_RETRY_MS, 2);
  });

  it('a trial whose caller cancelled it lets the next call try at once', () => {
    const h = new GatewayHealth(() => 1);
    h.failed(0);
    expect(h.acquire(200)).toBe(true);
    h.abandoned(250);
    expect(h.state).toBe('down');
    expect(h.acquire(250)).toBe(true);
    expect(h.state).toBe('trial');
  });
});

/** Every attempt sent to any stand-in, in order. */
const attempts: Array<{ gateway: FakeGateway; request: SessionRequest; listener: CallListener }> = [];
/** The newest attempt, wherever it went. */
const latest = () => attempts.at(-1)!;

/** A gateway stand-in: records what was sent to it; the test answers through `listeners`. */
class FakeGateway {
  readonly health: GatewayHealth;
  outstanding = 0;
  readonly sent: SessionRequest[] = [];
  readonly listeners: CallListener[] = [];
  downs = 0;
  constructor(
    readonly address: string,
    random = () => 0.5,
  ) {
    this.health = new GatewayHealth(random);
  }
  start(request: SessionRequest, listener: CallListener) {
    this.sent.push(request);
    this.listeners.push(listener);
    attempts.push({ gateway: this, request, listener });
    return { credit: () => undefined, cancel: () => undefined };
  }
  markDown(): void {
    this.downs++;
    this.health.failed(clock.now);
  }
  last(): CallListener {
    return this.listeners.at(-1)!;
  }
}

const clock = { now: 0 };
const asConnections = (gws: FakeGateway[]) => gws as unknown as GatewayConnection[];

function routing(gws: FakeGateway[], knowledge = new IdempotencyKnowledge()): CallRouting {
  return {
    knowledge,
    size: gws.length,
    pick: (tried) => pickGateway(asConnections(gws), tried, clock.now, seeded(3)) as unknown as GatewayConnection,
    now: () => clock.now,
  };
}

interface Outcome {
  payloads: string[];
  ended: boolean;
  error: EasyRemoteError | undefined;
}

function call(route: CallRouting, fields: Partial<CallRequest> = {}): { handle: FailoverCall; outcome: Outcome } {
  const outcome: Outcome = { payloads: [], ended: false, error: undefined };
  const request: CallRequest = { function: 'f', args: SegmentedBytes.of(Buffer.alloc(0)), options: undefined, metadata: {}, deadline: Infinity, stream: false, signal: undefined, onProgress: undefined, ...fields };
  const handle = new FailoverCall(route, request, {
    payload: (b) => outcome.payloads.push(b.toString()),
    end: () => (outcome.ended = true),
    error: (e) => (outcome.error = e),
  });
  handle.begin();
  return { handle, outcome };
}

describe('pickGateway', () => {
  it('sends to the up gateway with the fewest calls outstanding', () => {
    const gws = [new FakeGateway('a'), new FakeGateway('b'), new FakeGateway('c')];
    gws[0]!.outstanding = 3;
    gws[1]!.outstanding = 1;
    gws[2]!.outstanding = 2;
    expect(pickGateway(asConnections(gws), [], 0, seeded(1)).address).toBe('b');
    // One the call has tried is passed over while others remain.
    expect(pickGateway(asConnections(gws), [asConnections(gws)[1]!], 0, seeded(1)).address).toBe('c');
  });

  it('spreads ties at random', () => {
    const gws = [new FakeGateway('a'), new FakeGateway('b')];
    const counts = { a: 0, b: 0 } as Record<string, number>;
    const random = seeded(5);
    for (let i = 0; i < 1000; i++) counts[pickGateway(asConnections(gws), [], 0, random).address]!++;
    expect(counts.a).toBeGreaterThan(400);
    expect(counts.b).toBeGreaterThan(400);
  });

  it('leaves a down gateway alone until its delay is over, then gives it one call as a trial', () => {
    const gws = [new FakeGateway('a', () => 1), new FakeGateway('b')];
    gws[0]!.health.failed(0);
    gws[1]!.outstanding = 50;
    expect(pickGateway(asConnections(gws), [], 99, seeded(1)).address).toBe('b');
    expect(pickGateway(asConnections(gws), [], 100, seeded(1)).address).toBe('a');
    expect(gws[0]!.health.state).toBe('trial');
    expect(pickGateway(asConnections(gws), [], 101, seeded(1)).address).toBe('b');
  });

  it('never refuses: with every gateway down, the one tried soonest', () => {
    const gws = [new FakeGateway('a', () => 1), new FakeGateway('b', () => 0)];
    gws[0]!.health.failed(0);
    gws[1]!.health.failed(0);
    expect(pickGateway(asConnections(gws), [], 10, seeded(1)).address).toBe('b');
  });
});

describe('FailoverCall', () => {
  const lost = () => new GatewayLost('the session broke; it may or may not have run');

  it('resends a call that was not sent (GATEWAY_UNAVAILABLE) to another gateway, whatever the function', () => {
    const gws = [new FakeGateway('a'), new FakeGateway('b')];
    const { outcome } = call(routing(gws));
    const first = gws.find((g) => g.sent.length === 1)!;
    const other = gws.find((g) => g !== first)!;
    first.last().error(new GatewayUnavailable('no connection'));
    expect(first.downs).toBe(1);
    expect(other.sent).toHaveLength(1);
    other.last().payload(Buffer.from('ok'));
    expect(outcome).toEqual({ payloads: ['ok'], ended: false, error: undefined });
    expect([first.outstanding, other.outstanding]).toEqual([0, 0]);
  });

  it('fails a call of a function not known idempotent at once with GATEWAY_LOST when its gateway is lost', () => {
    const gws = [new FakeGateway('a'), new FakeGateway('b')];
    const { outcome } = call(routing(gws));
    const first = gws.find((g) => g.sent.length === 1)!;
    expect(first.sent[0]!.assumeIdempotent).toBe(false);
    first.last().error(lost());
    expect(outcome.error?.code).toBe('GATEWAY_LOST');
    expect(gws.reduce((n, g) => n + g.sent.length, 0)).toBe(1);
  });

  it('resends a call of a function a gateway said is idempotent, assuming so on every attempt', () => {
    const knowledge = new IdempotencyKnowledge();
    knowledge.learn('f', true);
    const gws = [new FakeGateway('a'), new FakeGateway('b')];
    const { outcome } = call(routing(gws, knowledge));
    const first = gws.find((g) => g.sent.length === 1)!;
    expect(first.sent[0]!.assumeIdempotent).toBe(true);
    first.last().error(lost());
    const other = gws.find((g) => g !== first)!;
    expect(other.sent[0]!.assumeIdempotent).toBe(true);
    other.last().payload(Buffer.from('ok'));
    expect(outcome.payloads).toEqual(['ok']);
  });

  it('resends an idempotent call when the gateway stopped with it in flight (CANCELLED from the gateway)', () => {
    const knowledge = new IdempotencyKnowledge();
    knowledge.learn('f', true);
    const gws = [new FakeGateway('a'), new FakeGateway('b')];
    const { outcome } = call(routing(gws, knowledge));
    const first = latest();
    first.listener.error(new Cancelled('the gateway is shutting down'));
    expect(latest().gateway).not.toBe(first.gateway);
    latest().listener.payload(Buffer.from('ok'));
    expect(outcome).toEqual({ payloads: ['ok'], ended: false, error: undefined });
  });

  it('does not resend a stream that delivered a chunk', () => {
    const knowledge = new IdempotencyKnowledge();
    knowledge.learn('f', true);
    const gws = [new FakeGateway('a'), new FakeGateway('b')];
    const { outcome } = call(routing(gws, knowledge), { stream: true });
    const first = gws.find((g) => g.sent.length === 1)!;
    first.last().payload(Buffer.from('chunk 1'));
    first.last().error(lost());
    expect(outcome).toMatchObject({ payloads: ['chunk 1'], error: { code: 'GATEWAY_LOST' } });
    expect(gws.reduce((n, g) => n + g.sent.length, 0)).toBe(1);
  });

  it('resends a stream that delivered nothing yet', () => {
    const knowledge = new IdempotencyKnowledge();
    knowledge.learn('f', true);
    const gws = [new FakeGateway('a'), new FakeGateway('b')];
    const { outcome } = call(routing(gws, knowledge), { stream: true });
    latest().listener.error(lost());
    latest().listener.payload(Buffer.from('c'));
    latest().listener.end();
    expect(outcome).toEqual({ payloads: ['c'], ended: true, error: undefined });
    expect(gws.map((g) => g.sent.length)).toEqual([1, 1]);
  });

  it('on IDEMPOTENCY_MISMATCH learns the function is not idempotent and resends without the assumption', () => {
    const knowledge = new IdempotencyKnowledge();
    knowledge.learn('f', true);
    const gws = [new FakeGateway('a')];
    const { outcome } = call(routing(gws, knowledge));
    gws[0]!.last().error(new IdempotencyMismatch('f is not idempotent on this gateway'));
    expect(gws[0]!.sent.map((r) => r.assumeIdempotent)).toEqual([true, false]);
    expect(gws[0]!.health.state).toBe('up');
    gws[0]!.last().payload(Buffer.from('ok'));
    expect(outcome.payloads).toEqual(['ok']);
    expect(knowledge.assume('f')).toBe(false);
  });

  it('passes the gateway’s own errors on as they are, and counts the gateway as up', () => {
    const gws = [new FakeGateway('a'), new FakeGateway('b')];
    const { outcome } = call(routing(gws));
    const first = gws.find((g) => g.sent.length === 1)!;
    first.health.failed(0);
    first.last().error(new NoNodeAvailable('no healthy node provides f'));
    expect(outcome.error?.code).toBe('NO_NODE_AVAILABLE');
    expect(first.health.state).toBe('up');
  });

  it('makes at most one attempt per gateway plus one (two through a single address)', () => {
    const one = [new FakeGateway('nginx')];
    const a = call(routing(one));
    one[0]!.last().error(new GatewayUnavailable('x'));
    one[0]!.last().error(new GatewayUnavailable('y'));
    expect(one[0]!.sent).toHaveLength(2);
    expect(a.outcome.error?.message).toBe('y');

    const three = [new FakeGateway('a'), new FakeGateway('b'), new FakeGateway('c')];
    const b = call(routing(three));
    for (let i = 0; i < 4 && b.outcome.error === undefined; i++) latest().listener.error(new GatewayUnavailable(`down ${i}`));
    expect(three.map((g) => g.sent.length).sort()).toEqual([1, 1, 2]);
    expect(b.outcome.error?.message).toBe('down 3');
  });

  it('does not resend past the deadline, nor after the caller aborted', () => {
    const gws = [new FakeGateway('a'), new FakeGateway('b')];
    const late = call(routing(gws), { deadline: Date.now() - 1 });
    gws.find((g) => g.sent.length === 1)!.last().error(new GatewayUnavailable('gone'));
    expect(late.outcome.error?.code).toBe('GATEWAY_UNAVAILABLE');
    expect(gws.reduce((n, g) => n + g.sent.length, 0)).toBe(1);

    const controller = new AbortController();
    const gws2 = [new FakeGateway('a'), new FakeGateway('b')];
    const aborted = call(routing(gws2), { signal: controller.signal });
    controller.abort();
    gws2.find((g) => g.sent.length === 1)!.last().error(new Cancelled('aborted'));
    expect(aborted.outcome.error?.code).toBe('CANCELLED');
    expect(gws2.reduce((n, g) => n + g.sent.length, 0)).toBe(1);
  });

  it('cancel stops the attempt, frees its count, and lets a trial gateway be tried again', () => {
    const gws = [new FakeGateway('a', () => 1)];
    gws[0]!.health.failed(0);
    clock.now = 500;
    const { handle, outcome } = call(routing(gws));
    expect([gws[0]!.health.state, gws[0]!.outstanding]).toEqual(['trial', 1]);
    handle.cancel();
    expect([gws[0]!.health.state, gws[0]!.outstanding]).toEqual(['down', 0]);
    gws[0]!.last().payload(Buffer.from('late'));
    expect(outcome).toEqual({ payloads: [], ended: false, error: undefined });
    clock.now = 0;
  });
});

describe('IdempotencyKnowledge', () => {
  it('assumes idempotent only what a gateway said is, and stays bounded', () => {
    const k = new IdempotencyKnowledge();
    expect(k.assume('f')).toBe(false);
    k.learn('f', true);
    expect(k.assume('f')).toBe(true);
    k.learn('f', false);
    expect(k.assume('f')).toBe(false);
    for (let i = 0; i < MAX_KNOWN_FUNCTIONS + 10; i++) k.learn(`g${i}`, true);
    expect(k.assume(`g${MAX_KNOWN_FUNCTIONS + 9}`)).toBe(true);
    expect(k.assume('g0')).toBe(false);
  });
});

// Keeps the error classes used by the stand-ins honest: each is the catalogue code it claims.
it.each<[EasyRemoteError, ErrorCode]>([
  [new GatewayLost('x'), 'GATEWAY_LOST'],
  [new IdempotencyMismatch('x'), 'IDEMPOTENCY_MISMATCH'],
])('%s carries %s', (err, code) => expect(err.code).toBe(code));
