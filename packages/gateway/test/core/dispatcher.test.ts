import { describe, expect, it } from 'vitest';
import { DEFAULT_STREAM_CREDIT, ErrorDetail, PAYLOAD_PART_CREDIT } from '@easyremote/protocol';
import { registerStrategy } from '../../src/strategies/registry.js';
import type { Outcome, Strategy } from '../../src/strategies/strategy.js';
import { Core, type CoreOptions, type SpecInput, type TestNode } from '../support/core-harness.js';

/** A strategy that picks the first candidate and keeps every outcome it is told about. */
class ObservingStrategy implements Strategy {
  readonly name = 'test_observing';
  readonly seen: Outcome[] = [];
  select<C>(candidates: readonly C[]): C | undefined {
    return candidates[0];
  }
  observe(outcome: Outcome): void {
    this.seen.push(outcome);
  }
}
registerStrategy('test_observing', () => new ObservingStrategy());

/** Function `f` (pick_first unless declared otherwise) on nodes a and b, in that order. */
function twoNodes(fn: Omit<SpecInput, 'name'> = {}, options: CoreOptions = {}) {
  const core = new Core(options);
  const a = core.addNode('a', [{ name: 'f', ...fn }]);
  const b = core.addNode('b', [{ name: 'f', ...fn }]);
  return { core, a, b };
}

const attemptOf = (node: TestNode) => node.lastInvoke().attemptId;

describe('Dispatcher: results', () => {
  it('sends the invoke, delivers the result once and records the call', () => {
    const { core, a, b } = twoNodes();
    core.clock.advance(5);
    const { call, sink } = core.call('f', { args: 'xyz' });
    const inv = a.lastInvoke();
    // A call with one result gets credit for the parts of a large one.
    expect(inv).toMatchObject({ callId: call.id, attempt: 1, function: 'f', deadlineUnixMs: 0, initialCredit: PAYLOAD_PART_CREDIT, wantProgress: false, argsSize: 0 });
    expect(inv.args.toString()).toBe('xyz');
    expect(b.invokes()).toEqual([]);
    expect([core.dispatcher.inFlight, a.session.inFlight, core.entry('f').providers.get('a')!.inFlight]).toEqual([1, 1, 1]);

    core.clock.advance(40);
    a.result(inv.attemptId, 'done', 30);
    expect(sink.finals()).toEqual([{ type: 'result', payload: 'done', nodeId: 'a' }]);
    expect(core.recorded(call)).toMatchObject({ errorCode: '', nodeId: 'a', strategy: 'pick_first', attempts: 1 });
    expect([call.execMs, call.responseBytes]).toEqual([30, 4]);
    expect([core.dispatcher.inFlight, a.session.inFlight, core.entry('f').providers.get('a')!.inFlight]).toEqual([0, 0, 0]);
    expect(core.entry('f').providers.get('a')!.history).toMatchObject({ completed: 1, failures: 0, ewmaLatencyMs: 40, ewmaExecMs: 30 });

    // A duplicate reply for the finished attempt is dropped.
    a.result(inv.attemptId, 'again');
    expect(sink.finals()).toHaveLength(1);
    expect(core.recorder.calls).toHaveLength(1);
  });

  it("drops a reply from a node for an attempt that is another node's", () => {
    const { core, a, b } = twoNodes();
    const { sink } = core.call('f');
    const id = attemptOf(a);
    b.result(id, 'forged');
    b.fail(id, 'REMOTE_ERROR');
    expect(sink.events).toEqual([]);
    a.result(id, 'genuine');
    expect(sink.finals()).toEqual([{ type: 'result', payload: 'genuine', nodeId: 'a' }]);
  });

  it("delivers a handler's error with the node named, and does not retry it", () => {
    const { core, a, b } = twoNodes({ idempotent: true });
    const { call, sink } = core.call('f');
    a.fail(attemptOf(a), 'REMOTE_ERROR', 'boom');
    expect(sink.finals()).toHaveLength(1);
    expect(sink.finals()[0]).toMatchObject({ type: 'error', error: { code: 'REMOTE_ERROR', message: 'boom', nodeId: 'a' } });
    expect(b.invokes()).toEqual([]);
    expect(core.recorded(call).errorCode).toBe('REMOTE_ERROR');
  });

  it('a call no node can take waits for one within the gap window, then is refused and recorded with the strategy that would have routed it', () => {
    const { core, a, b } = twoNodes();
    a.session.state = 'draining';
    b.session.state = 'draining';
    const { call, sink } = core.call('f');
    expect(sink.finals()).toEqual([]);
    expect(core.admission.size('f')).toBe(1);
    core.clock.advance(9_999);
    expect(sink.finals()).toEqual([]);
    core.clock.advance(1);
    expect(sink.errorCode).toBe('NO_NODE_AVAILABLE');
    expect(core.admission.size('f')).toBe(0);
    expect(core.recorded(call)).toMatchObject({ errorCode: 'NO_NODE_AVAILABLE', strategy: 'pick_first', nodeId: '', attempts: 0 });
    const bad = core.call('f', { options: { strategy: 'no_such' } });
    expect(bad.sink.errorCode).toBe('INVALID_ARGUMENT');
  });

  it('a call waiting for a provider goes as soon as one registers', () => {
    const { core, a, b } = twoNodes();
    a.session.state = 'draining';
    b.session.state = 'draining';
    const { sink } = core.call('f');
    const c = core.addNode('c', [{ name: 'f' }]);
    expect(c.invokes()).toHaveLength(1);
    c.result(attemptOf(c), 'from-c');
    expect(sink.finals()[0]).toMatchObject({ type: 'result', nodeId: 'c' });
  });

  it('with a queue limit of 0, a call no node can take is refused at once', () => {
    const core = new Core({ queueSize: 0 });
    const a = core.addNode('a', [{ name: 'f' }]);
    a.session.state = 'draining';
    expect(core.call('f').sink.errorCode).toBe('NO_NODE_AVAILABLE');
  });

  it('forwards progress only to callers that asked for it', () => {
    const { core, a } = twoNodes();
    const wanted = core.call('f', { wantProgress: true });
    expect(a.lastInvoke().wantProgress).toBe(true);
    a.progress(attemptOf(a), 0.5, 'half');
    const ignored = core.call('f');
    a.progress(attemptOf(a), 0.5, 'half');
    expect(wanted.sink.events).toEqual([{ type: 'progress', fraction: 0.5, message: 'half' }]);
    expect(ignored.sink.events).toEqual([]);
  });
});

describe('Dispatcher: failover', () => {
  it('retries an idempotent call on another node when its node is lost; the caller gets that node\'s result', () => {
    const { core, a, b } = twoNodes({ idempotent: true });
    const { call, sink } = core.call('f');
    const first = a.lastInvoke();
    a.lose('stream error');
    const second = b.lastInvoke();
    expect(second).toMatchObject({ callId: call.id, attempt: 2 });
    expect(second.attemptId).not.toBe(first.attemptId);
    expect(sink.events).toEqual([]);
    b.result(second.attemptId, 'from b');
    expect(sink.finals()).toEqual([{ type: 'result', payload: 'from b', nodeId: 'b' }]);
    expect(core.recorded(call)).toMatchObject({ errorCode: '', nodeId: 'b', attempts: 2 });
  });

  it('fails a non-idempotent call with NODE_LOST at once, naming the node and the reason', () => {
    const { core, a, b } = twoNodes({ idempotent: false });
    const { call, sink } = core.call('f');
    a.lose('stream cancelled');
    expect(b.invokes()).toEqual([]);
    expect(sink.finals()).toHaveLength(1);
    expect(sink.finals()[0]).toMatchObject({ type: 'error', error: { code: 'NODE_LOST', nodeId: 'a', message: 'node a was lost during f (stream cancelled)' } });
    expect(core.recorded(call)).toMatchObject({ errorCode: 'NODE_LOST', nodeId: 'a', attempts: 1 });
    expect(core.dispatcher.inFlight).toBe(0);
  });

  it('does not retry a call lost on a node that does not declare the function idempotent, though the node that registered first does', () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f', idempotent: true, loadBalancing: 'round_robin' }]);
    const b = core.addNode('b', [{ name: 'f', idempotent: false, loadBalancing: 'round_robin' }]);
    core.call('f');
    const { sink } = core.call('f');
    expect(b.invokes()).toHaveLength(1);
    b.lose('stream error');
    expect(a.invokes()).toHaveLength(1);
    expect(sink.finals()[0]).toMatchObject({ type: 'error', error: { code: 'NODE_LOST', nodeId: 'b' } });
  });

  it('does not retry an idempotent stream that already delivered chunks', () => {
    const { core, a, b } = twoNodes({ idempotent: true, kind: 'stream' });
    const { sink } = core.call('f', { streaming: true });
    a.chunk(attemptOf(a), 'part 1');
    a.lose();
    expect(b.invokes()).toEqual([]);
    expect(sink.errorCode).toBe('NODE_LOST');
  });

  it('drops the late reply of an attempt superseded after node loss: the caller gets one answer', () => {
    const { core, a, b } = twoNodes({ idempotent: true });
    const { sink } = core.call('f');
    const stale = attemptOf(a);
    a.lose();
    a.result(stale, 'late from a');
    a.fail(stale, 'REMOTE_ERROR');
    expect(sink.events).toEqual([]);
    b.result(attemptOf(b), 'from b');
    a.result(stale, 'later still');
    expect(sink.finals()).toEqual([{ type: 'result', payload: 'from b', nodeId: 'b' }]);
  });

  it.each(['OVERLOADED', 'FUNCTION_NOT_FOUND'] as const)('retries a node-side %s elsewhere, even when the call is not idempotent', (code) => {
    const { core, a, b } = twoNodes({ idempotent: false });
    const { call, sink } = core.call('f');
    a.fail(attemptOf(a), code);
    expect(b.invokes()).toHaveLength(1);
    b.result(attemptOf(b), 'ok');
    expect(sink.finals()).toEqual([{ type: 'result', payload: 'ok', nodeId: 'b' }]);
    expect(core.recorded(call).attempts).toBe(2);
    // The refusal says nothing about a's health.
    expect(core.detector.snapshot().filter((p) => p.nodeId === 'a' && p.windowFailures > 0)).toEqual([]);
  });

  it('healthCheck.retryCount bounds the retries', () => {
    const core = new Core();
    const nodes = ['a', 'b', 'c', 'd'].map((id) => core.addNode(id, [{ name: 'f', idempotent: true, loadBalancing: { healthCheck: { retryCount: 2 } } }]));
    const { call, sink } = core.call('f');
    nodes[0]!.lose();
    nodes[1]!.lose();
    expect(nodes[2]!.invokes()).toHaveLength(1);
    nodes[2]!.lose();
    expect(nodes[3]!.invokes()).toEqual([]);
    expect(sink.errorCode).toBe('NODE_LOST');
    expect(core.recorded(call).attempts).toBe(3);
  });

  it('retryCount 0 means no retry, node-side refusals included', () => {
    const { core, a, b } = twoNodes({ idempotent: true, loadBalancing: { healthCheck: { retryCount: 0 } } });
    const lost = core.call('f');
    a.fail(attemptOf(a), 'OVERLOADED');
    expect(lost.sink.errorCode).toBe('OVERLOADED');
    expect(b.invokes()).toEqual([]);
  });

  it("with no other node to try, the caller gets the node's own refusal and retry-after, not NO_NODE_AVAILABLE", () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f', idempotent: true }]);
    const busy = core.call('f');
    core.dispatcher.onError(a.session, { attemptId: attemptOf(a), execMs: 0, error: ErrorDetail.fromPartial({ code: 'OVERLOADED', message: 'f on node a is full', retryAfterMs: 100 }) });
    expect(busy.sink.finals()[0]).toMatchObject({ type: 'error', error: { code: 'OVERLOADED', message: 'f on node a is full', retryAfterMs: 100, nodeId: 'a' } });
    const lost = core.call('f');
    a.lose();
    expect(lost.sink.errorCode).toBe('NODE_LOST');
  });

  it("the gateway's default retry count applies to functions that name none", () => {
    const core = new Core({ retryCount: 1 });
    const nodes = ['a', 'b', 'c'].map((id) => core.addNode(id, [{ name: 'f', idempotent: true }]));
    const { sink } = core.call('f');
    nodes[0]!.fail(attemptOf(nodes[0]!), 'OVERLOADED');
    nodes[1]!.fail(attemptOf(nodes[1]!), 'OVERLOADED');
    expect(sink.errorCode).toBe('OVERLOADED');
    expect(nodes[2]!.invokes()).toEqual([]);
  });

  it('a retry that finds the other providers full waits in the queue and runs when one frees up', () => {
    const { core, a, b } = twoNodes({ idempotent: true, maxConcurrent: 1 });
    const first = core.call('f'); // a
    const second = core.call('f'); // b
    a.lose();
    expect(core.admission.size('f')).toBe(1);
    expect(second.sink.events).toEqual([]);
    b.result(b.invokes()[0]!.attemptId, 'second');
    expect(b.lastInvoke().callId).toBe(first.call.id);
    b.result(attemptOf(b), 'first');
    expect(first.sink.finals()).toEqual([{ type: 'result', payload: 'first', nodeId: 'b' }]);
    expect(second.sink.finals()).toEqual([{ type: 'result', payload: 'second', nodeId: 'b' }]);
  });
});

describe('Dispatcher: stream credit', () => {
  it(`grants the node ${DEFAULT_STREAM_CREDIT} chunks up front and returns credit in batches of half`, () => {
    const { core, a } = twoNodes({ kind: 'stream' });
    const { call, sink } = core.call('f', { streaming: true });
    const id = attemptOf(a);
    expect(a.lastInvoke().initialCredit).toBe(DEFAULT_STREAM_CREDIT);
    const batch = DEFAULT_STREAM_CREDIT / 2;
    for (let i = 1; i < batch; i++) a.chunk(id, `c${i}`);
    expect(a.credits()).toEqual([]);
    a.chunk(id, `c${batch}`);
    expect(a.credits()).toEqual([{ attemptId: id, chunks: batch }]);
    for (let i = 1; i <= batch; i++) a.chunk(id);
    expect(a.credits()).toEqual([
      { attemptId: id, chunks: batch },
      { attemptId: id, chunks: batch },
    ]);
    a.end(id);
    expect(sink.events.filter((e) => e.type === 'chunk')).toHaveLength(2 * batch);
    expect(sink.finals()).toEqual([{ type: 'end' }]);
    expect(core.recorded(call)).toMatchObject({ errorCode: '' });
    expect(call.chunks).toBe(2 * batch);
  });

  it('uses the configured initial credit', () => {
    const { core, a } = twoNodes({ kind: 'stream' }, { initialCredit: 4 });
    core.call('f', { streaming: true });
    const id = attemptOf(a);
    expect(a.lastInvoke().initialCredit).toBe(4);
    a.chunk(id);
    a.chunk(id);
    expect(a.credits()).toEqual([{ attemptId: id, chunks: 2 }]);
  });

  it(`returns a large result's part credit in batches of half its own ${PAYLOAD_PART_CREDIT}, whatever the stream credit`, () => {
    // A stream credit far above the parts' credit must not make the node wait for a batch it can never fill.
    const { core, a } = twoNodes({}, { initialCredit: 64 });
    const { sink } = core.call('f');
    const id = attemptOf(a);
    expect(a.lastInvoke().initialCredit).toBe(PAYLOAD_PART_CREDIT);
    for (let i = 0; i < PAYLOAD_PART_CREDIT; i++) a.resultPart(id);
    expect(a.credits()).toEqual([
      { attemptId: id, chunks: PAYLOAD_PART_CREDIT / 2 },
      { attemptId: id, chunks: PAYLOAD_PART_CREDIT / 2 },
    ]);
    a.result(id, 'last');
    expect(sink.finals()).toHaveLength(1);
  });

  it('a slow consumer withholds credit until its drain fires, then returns all it owes', () => {
    const { core, a } = twoNodes({ kind: 'stream' });
    const { sink } = core.call('f', { streaming: true });
    const id = attemptOf(a);
    a.chunk(id);
    a.chunk(id);
    sink.accepting = false;
    for (let i = 0; i < 12; i++) a.chunk(id);
    expect(a.credits()).toEqual([]);
    expect(sink.drainListenerCount).toBe(1);
    sink.drain();
    expect(a.credits()).toEqual([{ attemptId: id, chunks: 14 }]);
    // Back to batches once the consumer keeps up.
    for (let i = 0; i < 7; i++) a.chunk(id);
    expect(a.credits()).toHaveLength(1);
    a.chunk(id);
    expect(a.credits()).toEqual([
      { attemptId: id, chunks: 14 },
      { attemptId: id, chunks: 8 },
    ]);
  });

  it('withholds credit until the drain even when the consumer accepts chunks before it fires', () => {
    const { core, a } = twoNodes({ kind: 'stream' });
    const { sink } = core.call('f', { streaming: true });
    const id = attemptOf(a);
    sink.accepting = false;
    a.chunk(id);
    // A stream's write() may accept again before its 'drain' event: the drain still decides.
    sink.accepting = true;
    for (let i = 0; i < 10; i++) a.chunk(id);
    expect(a.credits()).toEqual([]);
    sink.drain();
    expect(a.credits()).toEqual([{ attemptId: id, chunks: 11 }]);
  });

  it('sends no credit when the drain comes after the attempt ended', () => {
    const { core, a } = twoNodes({ kind: 'stream' });
    const { sink } = core.call('f', { streaming: true });
    const id = attemptOf(a);
    sink.accepting = false;
    a.chunk(id);
    a.end(id);
    sink.drain();
    expect(a.credits()).toEqual([]);
  });
});

describe('Dispatcher: deadlines and cancellation', () => {
  it('fails the call with DEADLINE_EXCEEDED when its deadline passes, and tells the node to stop', () => {
    const { core, a } = twoNodes();
    const { call, sink } = core.call('f', { timeoutMs: 1_000 });
    const id = attemptOf(a);
    expect(a.lastInvoke().deadlineUnixMs).toBe(core.clock.epochMs() + 1_000);
    core.clock.advance(999);
    expect(sink.events).toEqual([]);
    expect(a.cancels()).toEqual([]);
    core.clock.advance(1);
    expect(sink.finals()).toHaveLength(1);
    expect(sink.finals()[0]).toMatchObject({ type: 'error', error: { code: 'DEADLINE_EXCEEDED', message: 'f did not finish before its deadline (node a)' } });
    expect(a.cancels()).toEqual([{ attemptId: id, reason: 'deadline' }]);
    expect(core.recorded(call).errorCode).toBe('DEADLINE_EXCEEDED');
    expect(core.dispatcher.inFlight).toBe(0);
    // The node's late answer goes nowhere; the missed deadline counts against the node.
    a.result(id, 'late');
    expect(sink.finals()).toHaveLength(1);
    expect(core.detector.snapshot().find((p) => p.nodeId === 'a')).toMatchObject({ consecutiveFailures: 1 });
  });

  it('fails a call whose deadline passed before dispatch without sending anything', () => {
    const { core, a } = twoNodes();
    const { sink } = core.call('f', { timeoutMs: 0 });
    expect(sink.errorCode).toBe('DEADLINE_EXCEEDED');
    expect(a.frames).toEqual([]);
  });

  it('clears the deadline timer when the call finishes in time', () => {
    const { core, a } = twoNodes();
    const { sink } = core.call('f', { timeoutMs: 1_000 });
    expect(core.clock.pendingTimers).toBe(1);
    a.result(attemptOf(a), 'ok');
    expect(core.clock.pendingTimers).toBe(0);
    core.clock.advance(5_000);
    expect(sink.finals()).toEqual([{ type: 'result', payload: 'ok', nodeId: 'a' }]);
    expect(a.cancels()).toEqual([]);
  });

  it('a client cancel tells the node, records CANCELLED, replies to no one and does not count against the node', () => {
    const { core, a } = twoNodes({}, { outlierDetection: { consecutiveFailures: 1 } });
    const { call, sink } = core.call('f', { timeoutMs: 10_000 });
    const id = attemptOf(a);
    core.dispatcher.cancel(call);
    expect(a.cancels()).toEqual([{ attemptId: id, reason: 'client-cancelled' }]);
    expect(sink.events).toEqual([]);
    expect(core.recorded(call).errorCode).toBe('CANCELLED');
    expect(core.detector.state('a', 'f')).toBe('closed');
    expect(core.clock.pendingTimers).toBe(0);
    core.dispatcher.cancel(call);
    expect(a.cancels()).toHaveLength(1);
    expect(core.recorder.calls).toHaveLength(1);
  });

  it('a cancel that arrives after the deadline passed (its timer late) counts as the deadline', () => {
    const { core, a } = twoNodes();
    const { call, sink } = core.call('f', { timeoutMs: 1_000 });
    const id = attemptOf(a);
    core.clock.jump(1_000);
    core.dispatcher.cancel(call);
    expect(a.cancels()).toEqual([{ attemptId: id, reason: 'deadline' }]);
    expect(sink.errorCode).toBe('DEADLINE_EXCEEDED');
    expect(core.recorded(call).errorCode).toBe('DEADLINE_EXCEEDED');
    core.clock.advance(0);
    expect(core.recorder.calls).toHaveLength(1);
  });

  it('healthCheck.timeout moves an idempotent call to another node and cancels the slow attempt', () => {
    const { core, a, b } = twoNodes({ idempotent: true, loadBalancing: { healthCheck: { timeout: 500 } } });
    const { call, sink } = core.call('f');
    const slow = attemptOf(a);
    core.clock.advance(499);
    expect(b.invokes()).toEqual([]);
    core.clock.advance(1);
    expect(a.cancels()).toEqual([{ attemptId: slow, reason: 'attempt-timeout' }]);
    expect(b.lastInvoke()).toMatchObject({ callId: call.id, attempt: 2 });
    a.result(slow, 'too late');
    b.result(attemptOf(b), 'from b');
    expect(sink.finals()).toEqual([{ type: 'result', payload: 'from b', nodeId: 'b' }]);
  });

  it('healthCheck.timeout fails a non-idempotent call with DEADLINE_EXCEEDED naming the node and the limit', () => {
    const { core, a, b } = twoNodes({ idempotent: false, loadBalancing: { healthCheck: { timeout: 500 } } });
    const { sink } = core.call('f');
    core.clock.advance(500);
    expect(b.invokes()).toEqual([]);
    expect(sink.finals()[0]).toMatchObject({
      type: 'error',
      error: { code: 'DEADLINE_EXCEEDED', nodeId: 'a', message: 'f on node a exceeded its healthCheck timeout of 500 ms' },
    });
    expect(a.cancels()).toHaveLength(1);
  });

  it('an attempt that answers within healthCheck.timeout is not cancelled', () => {
    const { core, a } = twoNodes({ idempotent: true, loadBalancing: { healthCheck: { timeout: 500 } } });
    const { sink } = core.call('f');
    core.clock.advance(499);
    a.result(attemptOf(a), 'ok');
    core.clock.advance(1_000);
    expect(a.cancels()).toEqual([]);
    expect(sink.finals()).toHaveLength(1);
  });
});

describe('Dispatcher: the admission queue', () => {
  /** Function f with one slot on node a; the gateway queues `queueSize` calls. */
  function oneSlot(queueSize = 2) {
    const core = new Core({ queueSize });
    const a = core.addNode('a', [{ name: 'f', maxConcurrent: 1 }]);
    return { core, a };
  }

  it('a call that finds every provider full waits, and is dispatched when an attempt finishes', () => {
    const { core, a } = oneSlot();
    const running = core.call('f');
    core.clock.advance(10);
    const waiting = core.call('f');
    expect(a.invokes()).toHaveLength(1);
    expect(core.admission.size('f')).toBe(1);
    expect(waiting.call.queued).toBe(true);
    core.clock.advance(90);
    a.result(attemptOf(a), 'first');
    expect(a.lastInvoke().callId).toBe(waiting.call.id);
    expect(core.admission.size('f')).toBe(0);
    expect(waiting.call.dispatchedAt - waiting.call.arrivedAt).toBe(90);
    a.result(attemptOf(a), 'second');
    expect(waiting.sink.finals()).toEqual([{ type: 'result', payload: 'second', nodeId: 'a' }]);
    expect(running.sink.finals()).toEqual([{ type: 'result', payload: 'first', nodeId: 'a' }]);
  });

  it('waiting calls leave the queue oldest first', () => {
    const { core, a } = oneSlot(3);
    core.call('f');
    const waiting = [core.call('f'), core.call('f'), core.call('f')];
    const order: number[] = [];
    for (let i = 0; i < 4; i++) {
      order.push(a.lastInvoke().callId);
      a.result(attemptOf(a), 'ok');
    }
    expect(order.slice(1)).toEqual(waiting.map((w) => w.call.id));
  });

  it('beyond the queue limit a call is refused with OVERLOADED at once', () => {
    const { core } = oneSlot(2);
    core.call('f');
    core.call('f');
    core.call('f');
    const refused = core.call('f');
    expect(refused.sink.finals()[0]).toMatchObject({
      type: 'error',
      error: { code: 'OVERLOADED', message: expect.stringContaining('every provider of f is at capacity'), retryAfterMs: 200, limit: { name: 'gateway_queue_size', limit: 2, actual: 3 } },
    });
    expect(core.recorded(refused.call).errorCode).toBe('OVERLOADED');
    expect(core.admission.size('f')).toBe(2);
  });

  it('with a queue limit of 0 a full function refuses at once', () => {
    const { core } = oneSlot(0);
    core.call('f');
    expect(core.call('f').sink.errorCode).toBe('OVERLOADED');
  });

  it('a waiting call whose deadline passes gets DEADLINE_EXCEEDED and leaves the queue', () => {
    const { core, a } = oneSlot();
    core.call('f');
    const waiting = core.call('f', { timeoutMs: 300 });
    core.clock.advance(300);
    expect(waiting.sink.finals()[0]).toMatchObject({ type: 'error', error: { code: 'DEADLINE_EXCEEDED', message: 'f did not finish before its deadline' } });
    expect(core.admission.size('f')).toBe(0);
    expect(waiting.call.queued).toBe(false);
    a.result(attemptOf(a), 'ok');
    expect(a.invokes()).toHaveLength(1);
    expect(a.cancels()).toEqual([]);
  });

  it('a waiting call the client cancels leaves the queue', () => {
    const { core, a } = oneSlot();
    core.call('f');
    const waiting = core.call('f');
    core.dispatcher.cancel(waiting.call);
    expect(core.admission.size('f')).toBe(0);
    expect(core.recorded(waiting.call).errorCode).toBe('CANCELLED');
    a.result(attemptOf(a), 'ok');
    expect(a.invokes()).toHaveLength(1);
  });

  it('a provider that joins takes the waiting calls', () => {
    const { core } = oneSlot();
    core.call('f');
    const waiting = core.call('f');
    const b = core.addNode('b', [{ name: 'f', maxConcurrent: 1 }]);
    expect(b.lastInvoke().callId).toBe(waiting.call.id);
    expect(core.admission.size('f')).toBe(0);
  });
});

describe('Dispatcher: feedback', () => {
  it('gives the outcome to the very strategy instance that picked the node, and to no other', () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f', loadBalancing: 'test_observing' }, { name: 'g', loadBalancing: 'test_observing' }]);
    const f = core.entry('f').strategy('test_observing') as ObservingStrategy;
    const g = core.entry('g').strategy('test_observing') as ObservingStrategy;
    expect(f).not.toBe(g);
    core.call('f', { args: 'four' });
    core.clock.advance(40);
    a.result(attemptOf(a), 'ok', 30);
    expect(g.seen).toEqual([]);
    expect(f.seen).toHaveLength(1);
    const [o] = f.seen;
    expect(o).toMatchObject({ nodeId: 'a', ok: true, latencyMs: 40, execMs: 30 });
    // Features as they were when the node was picked, not after.
    expect(o!.candidate).toMatchObject({ nodeId: 'a', inFlight: 0, history: { completed: 0 } });
    expect(o!.context).toMatchObject({ functionName: 'f', requestBytes: 4 });

    core.call('g');
    a.fail(attemptOf(a), 'REMOTE_ERROR');
    expect(g.seen.map((s) => s.ok)).toEqual([false]);
    expect(f.seen).toHaveLength(1);
  });

  it('an execution time that cannot be true (NaN, infinite, negative) reaches nothing as such: it counts as 0', () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f', loadBalancing: 'test_observing' }]);
    const f = core.entry('f').strategy('test_observing') as ObservingStrategy;
    const provider = core.entry('f').providers.get('a')!;
    core.call('f');
    a.result(attemptOf(a), 'ok', 20);
    for (const execMs of [Infinity, NaN, -5, -Infinity]) {
      const { call } = core.call('f');
      a.result(attemptOf(a), 'ok', execMs);
      expect(call.execMs).toBe(0);
      const { call: failed } = core.call('f');
      a.fail(attemptOf(a), 'REMOTE_ERROR', 'no', execMs);
      expect(failed.execMs).toBe(0);
    }
    // Prometheus refuses a non-finite observation by throwing, from a timer when the call then
    // waited for its deadline: the gateway process died. Strategies and history stay finite.
    expect(f.seen.every((o) => o.execMs === 0 || o.execMs === 20)).toBe(true);
    expect(provider.history.ewmaExecMs).toBe(20);
  });

  it('an attempt the caller abandoned teaches neither the strategy nor the provider history anything', () => {
    const core = new Core();
    const a = core.addNode('a', [{ name: 'f', loadBalancing: 'test_observing' }]);
    const f = core.entry('f').strategy('test_observing') as ObservingStrategy;
    const { call } = core.call('f');
    core.dispatcher.cancel(call);
    expect(a.cancels()).toEqual([expect.objectContaining({ reason: 'client-cancelled' })]);
    expect(f.seen).toEqual([]);
    expect(core.entry('f').providers.get('a')!.history).toMatchObject({ completed: 0, failures: 0 });
    // A deadline the node did not meet does count.
    core.call('f', { timeoutMs: 100 });
    core.clock.advance(100);
    expect(f.seen.map((o) => o.ok)).toEqual([false]);
    expect(core.entry('f').providers.get('a')!.history.failures).toBe(1);
  });

  it("gives a per-call strategy's outcome to the function's instance of it", () => {
    const { core, a } = twoNodes();
    core.call('f', { options: { strategy: 'test_observing' } });
    a.result(attemptOf(a), 'ok');
    expect((core.entry('f').strategy('test_observing') as ObservingStrategy).seen).toHaveLength(1);
  });

  it('a retried call reports each attempt to the strategy', () => {
    const { core, a, b } = twoNodes({ idempotent: true, loadBalancing: 'test_observing' });
    core.call('f');
    a.lose();
    b.result(attemptOf(b), 'ok');
    const s = core.entry('f').strategy('test_observing') as ObservingStrategy;
    expect(s.seen.map((o) => `${o.nodeId}:${o.ok}`)).toEqual(['a:false', 'b:true']);
  });

  it('ejects a node that keeps failing for that function only; it serves its other functions, and is readmitted after a good probe', () => {
    const core = new Core({ outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 1_000 } });
    const a = core.addNode('a', [{ name: 'f' }, { name: 'g' }]);
    const b = core.addNode('b', [{ name: 'f' }, { name: 'g' }]);
    for (let i = 0; i < 3; i++) {
      core.call('f');
      a.fail(attemptOf(a), 'REMOTE_ERROR', 'CUDA out of memory');
    }
    expect(core.events).toContain('ejected:a:f');
    expect([core.detector.state('a', 'f'), core.detector.state('a', 'g')]).toEqual(['open', 'closed']);
    core.call('f');
    expect(b.invokes()).toHaveLength(1);
    core.call('g');
    expect(a.lastInvoke().function).toBe('g');

    core.clock.advance(1_000);
    expect(core.detector.state('a', 'f')).toBe('half_open');
    const probe = core.call('f');
    expect(a.lastInvoke()).toMatchObject({ function: 'f', callId: probe.call.id });
    a.result(attemptOf(a), 'fine again');
    expect(core.events).toContain('readmitted:a:f');
    expect(core.detector.state('a', 'f')).toBe('closed');
  });

  it('does not count errors that say nothing about the node', () => {
    const { core, a } = twoNodes({}, { outlierDetection: { consecutiveFailures: 2 } });
    for (const code of ['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', 'INVALID_ARGUMENT'] as const) {
      core.call('f');
      a.fail(attemptOf(a), code);
    }
    expect(core.detector.state('a', 'f')).toBe('closed');
  });

  it('leaves the detector out when the function turns healthCheck off', () => {
    const { core, a } = twoNodes({ loadBalancing: { healthCheck: { enabled: false } } }, { outlierDetection: { consecutiveFailures: 2 } });
    for (let i = 0; i < 4; i++) {
      core.call('f');
      a.fail(attemptOf(a), 'REMOTE_ERROR');
    }
    expect(core.detector.snapshot()).toEqual([]);
    expect(core.events.filter((e) => e.startsWith('ejected'))).toEqual([]);
  });
});

describe('Dispatcher: shutdown', () => {
  it('fails in-flight and waiting calls with CANCELLED and tells the nodes', () => {
    const core = new Core({ queueSize: 4 });
    const a = core.addNode('a', [{ name: 'f', maxConcurrent: 1 }]);
    const running = core.call('f', { timeoutMs: 10_000 });
    const waiting = core.call('f', { timeoutMs: 10_000 });
    const id = attemptOf(a);
    core.dispatcher.shutdown();
    for (const { call, sink } of [running, waiting]) {
      expect(sink.finals()[0]).toMatchObject({ type: 'error', error: { code: 'CANCELLED', message: 'the gateway is shutting down' } });
      expect(core.recorded(call).errorCode).toBe('CANCELLED');
    }
    expect(a.cancels()).toEqual([{ attemptId: id, reason: 'gateway-shutdown' }]);
    expect(a.invokes()).toHaveLength(1);
    expect([core.dispatcher.inFlight, core.admission.size('f'), core.clock.pendingTimers]).toEqual([0, 0, 0]);
  });
});
