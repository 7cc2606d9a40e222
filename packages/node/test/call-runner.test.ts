import { describe, expect, it } from 'vitest';
import { decode, type NodeFrame } from '@easyremote/protocol';
import { CallRunner } from '../src/call-runner.js';
import { currentCall } from '../src/context.js';
import type { RemoteOptions } from '../src/options.js';
import type { Handler } from '../src/registered-function.js';
import { FakeClock, FakeLink, flush, invokeOf, manualHandler } from './fakes.js';

function setup(maxConcurrent?: number) {
  const clock = new FakeClock();
  let idle = 0;
  const runner = new CallRunner({ nodeId: 'n1', maxConcurrent, clock, onIdle: () => idle++ });
  const add = (name: string, handler: Handler, options: RemoteOptions = {}, kind: 'unary' | 'stream' = 'unary') =>
    runner.add({ name, handler, thisArg: undefined, options, kind });
  return { clock, runner, add, link: new FakeLink(), idle: () => idle };
}

const resultOf = (link: FakeLink, attemptId: number) => {
  const r = link.sent.find((f: NodeFrame) => f.result?.attemptId === attemptId)?.result;
  return r && decode(r.payload);
};

describe('CallRunner admission', () => {
  it('starts up to maxConcurrent, queues up to queueSize, refuses beyond as Overloaded', async () => {
    const { runner, add, link } = setup();
    const f = manualHandler();
    add('f', f.handler, { maxConcurrent: 1, queueSize: 1 });
    const [a, b, c] = [invokeOf('f', ['a']), invokeOf('f', ['b']), invokeOf('f', ['c'])];
    for (const i of [a, b, c]) runner.invoke(link, i);
    expect(f.args()).toEqual(['a']);
    expect(runner.activeCalls).toBe(2);
    expect(runner.load()).toEqual([{ name: 'f', inFlight: 1, queued: 1 }]);
    expect(link.errorCode(c.attemptId)).toBe('OVERLOADED');
    expect(link.sent.find((x) => x.error?.attemptId === c.attemptId)!.error!.error!.retryAfterMs).toBeGreaterThan(0);

    f.started[0]!.resolve('A');
    await flush();
    expect(resultOf(link, a.attemptId)).toBe('A');
    expect(f.args()).toEqual(['a', 'b']);
    f.started[1]!.resolve('B');
    await flush();
    expect(resultOf(link, b.attemptId)).toBe('B');
    expect(runner.activeCalls).toBe(0);
  });

  it('holds calls beyond the node-wide maxConcurrent, whatever their function', async () => {
    const { runner, add, link } = setup(1);
    const f = manualHandler();
    const g = manualHandler();
    add('f', f.handler);
    add('g', g.handler);
    runner.invoke(link, invokeOf('f', [1]));
    runner.invoke(link, invokeOf('g', [2]));
    expect([f.args(), g.args()]).toEqual([[1], []]);
    f.started[0]!.resolve(null);
    await flush();
    expect(g.args()).toEqual([2]);
  });

  it('answers FunctionNotFound for an unknown name and Overloaded while draining', () => {
    const { runner, add, link } = setup();
    add('f', () => 1);
    const unknown = invokeOf('nope');
    runner.invoke(link, unknown);
    expect(link.errorCode(unknown.attemptId)).toBe('FUNCTION_NOT_FOUND');
    runner.stopAccepting();
    const late = invokeOf('f');
    runner.invoke(link, late);
    expect(link.errorCode(late.attemptId)).toBe('OVERLOADED');
  });

  it('a freed slot goes to the waiting call of the highest priority', async () => {
    const { runner, add, link } = setup(1);
    const low = manualHandler();
    const high = manualHandler();
    add('low', low.handler, { priority: 0 });
    add('high', high.handler, { priority: 5 });
    runner.invoke(link, invokeOf('low', ['low-1']));
    runner.invoke(link, invokeOf('low', ['low-2']));
    runner.invoke(link, invokeOf('high', ['high-1']));
    low.started[0]!.resolve(null);
    await flush();
    expect([low.args(), high.args()]).toEqual([['low-1'], ['high-1']]);
    high.started[0]!.resolve(null);
    await flush();
    expect(low.args()).toEqual(['low-1', 'low-2']);
  });
});

describe('CallRunner deadlines', () => {
  it('never starts a call whose deadline passed before its turn; it answers DeadlineExceeded', async () => {
    const { clock, runner, add, link } = setup();
    const f = manualHandler();
    add('f', f.handler, { maxConcurrent: 1, queueSize: 1 });
    const late = invokeOf('f', ['late'], { deadlineUnixMs: clock.now() - 1 });
    runner.invoke(link, late);
    expect(f.args()).toEqual([]);
    expect(link.errorCode(late.attemptId)).toBe('DEADLINE_EXCEEDED');

    const a = invokeOf('f', ['a']);
    const b = invokeOf('f', ['b'], { deadlineUnixMs: clock.now() + 100 });
    runner.invoke(link, a);
    runner.invoke(link, b);
    // Time passes without the deadline timer getting to run (a stopped process).
    clock.jump(500);
    f.started[0]!.resolve('A');
    await flush();
    expect(f.args()).toEqual(['a']);
    expect(link.errorCode(b.attemptId)).toBe('DEADLINE_EXCEEDED');
    expect(runner.activeCalls).toBe(0);
  });

  it('a queued call whose deadline timer fires is withdrawn; a running one sees its signal fire', async () => {
    const { clock, runner, add, link } = setup();
    const f = manualHandler();
    add('f', f.handler, { maxConcurrent: 1, queueSize: 1 });
    const a = invokeOf('f', ['a'], { deadlineUnixMs: clock.now() + 1000 });
    const b = invokeOf('f', ['b'], { deadlineUnixMs: clock.now() + 100 });
    runner.invoke(link, a);
    runner.invoke(link, b);
    clock.advance(100);
    expect(runner.load()).toEqual([{ name: 'f', inFlight: 1, queued: 0 }]);
    clock.advance(900);
    expect(f.started[0]!.signal.reason).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    f.started[0]!.resolve('too late');
    await flush();
    expect(f.args()).toEqual(['a']);
    // The gateway answers the caller at its own deadline: the node sends nothing.
    expect(link.sent).toEqual([]);
    expect(runner.activeCalls).toBe(0);
  });
});

describe('CallRunner cancel', () => {
  it('a cancelled queued call never starts; a cancelled running call is aborted and sends nothing', async () => {
    const { runner, add, link, idle } = setup();
    const f = manualHandler();
    add('f', f.handler, { maxConcurrent: 1, queueSize: 1 });
    const a = invokeOf('f', ['a']);
    const b = invokeOf('f', ['b']);
    runner.invoke(link, a);
    runner.invoke(link, b);
    runner.cancel(link, b.attemptId, 'client-cancelled');
    expect(runner.activeCalls).toBe(1);
    runner.cancel(link, a.attemptId, 'client-cancelled');
    expect(f.started[0]!.signal.aborted).toBe(true);
    expect(f.started[0]!.signal.reason).toMatchObject({ code: 'CANCELLED' });
    f.started[0]!.resolve('ignored');
    await flush();
    expect(f.args()).toEqual(['a']);
    expect(link.sent).toEqual([]);
    expect(runner.activeCalls).toBe(0);
    expect(idle()).toBe(1);
  });
});

describe('CallRunner stream credit', () => {
  it('a generator stops producing at zero credit and resumes on a credit frame', async () => {
    const { runner, add, link } = setup();
    let produced = 0;
    add(
      'count',
      function* (n: number) {
        for (let i = 0; i < n; i++) {
          produced++;
          yield i;
        }
      },
      {},
      'stream',
    );
    const call = invokeOf('count', [5], { initialCredit: 2 });
    runner.invoke(link, call);
    await flush();
    expect(produced).toBe(2);
    expect(link.kinds(call.attemptId)).toEqual(['chunk', 'chunk']);
    runner.credit(link, call.attemptId, 1);
    await flush();
    expect(produced).toBe(3);
    runner.credit(link, call.attemptId, 10);
    await flush();
    expect(link.kinds(call.attemptId)).toEqual(['chunk', 'chunk', 'chunk', 'chunk', 'chunk', 'end']);
    expect(link.sent.filter((f) => f.chunk).map((f) => decode(f.chunk!.payload))).toEqual([0, 1, 2, 3, 4]);
  });

  it('waits for a full link buffer to drain before producing more', async () => {
    const { runner, add, link } = setup();
    add('count', function* () {
      yield* [1, 2, 3];
    }, {}, 'stream');
    link.full = true;
    const call = invokeOf('count', [], { initialCredit: 10 });
    runner.invoke(link, call);
    await flush();
    expect(link.kinds(call.attemptId)).toEqual(['chunk']);
    link.drain();
    await flush();
    expect(link.kinds(call.attemptId)).toEqual(['chunk', 'chunk', 'chunk', 'end']);
  });
});

describe('CallRunner fencing', () => {
  it('linkLost: queued calls never start, running signals fire, nothing is sent afterwards; other links go on', async () => {
    const { runner, add } = setup();
    const f = manualHandler();
    add('f', f.handler, { maxConcurrent: 1, queueSize: 2 });
    const lost = new FakeLink();
    const other = new FakeLink();
    const a = invokeOf('f', ['a']);
    const b = invokeOf('f', ['b']);
    // Attempt ids are unique per gateway only: the other link reuses b's.
    const c = { ...invokeOf('f', ['c']), attemptId: b.attemptId };
    runner.invoke(lost, a);
    runner.invoke(lost, b);
    runner.invoke(other, c);
    expect(runner.activeCalls).toBe(3);

    runner.linkLost(lost, 'stream error');
    expect(f.started[0]!.signal.reason).toMatchObject({ code: 'NODE_LOST' });
    expect(runner.activeCalls).toBe(2);
    f.started[0]!.resolve('A');
    await flush();
    expect(f.args()).toEqual(['a', 'c']);
    // Credit, cancel or progress for the lost link's calls change nothing either.
    runner.cancel(lost, b.attemptId, 'late');
    expect(lost.sent).toEqual([]);
    f.started[1]!.resolve('C');
    await flush();
    expect(resultOf(other, c.attemptId)).toBe('C');
    expect(runner.activeCalls).toBe(0);
  });

  it('a link that is no longer live gets nothing: no start for its queued call, no result for its running one', async () => {
    const { runner, add, link } = setup();
    const f = manualHandler();
    add('f', f.handler, { maxConcurrent: 1, queueSize: 1 });
    const a = invokeOf('f', ['a']);
    const b = invokeOf('f', ['b']);
    runner.invoke(link, a);
    runner.invoke(link, b);
    link.live = false;
    f.started[0]!.resolve('A');
    await flush();
    expect(f.args()).toEqual(['a']);
    expect(link.sent).toEqual([]);
    expect(runner.activeCalls).toBe(0);
  });

  it('close: every call is cancelled and nothing more is accepted', async () => {
    const { runner, add, link } = setup();
    const f = manualHandler();
    add('f', f.handler, { maxConcurrent: 1, queueSize: 1 });
    runner.invoke(link, invokeOf('f', ['a']));
    runner.invoke(link, invokeOf('f', ['b']));
    runner.close('stopped');
    expect(f.started[0]!.signal.reason).toMatchObject({ code: 'CANCELLED' });
    f.started[0]!.resolve('A');
    await flush();
    expect(f.args()).toEqual(['a']);
    expect(link.sent).toEqual([]);
    const late = invokeOf('f');
    runner.invoke(link, late);
    expect(link.errorCode(late.attemptId)).toBe('OVERLOADED');
  });
});

describe('CallRunner replies', () => {
  it('reports handler errors with name and stack, progress when wanted, and the payload limit', async () => {
    const { runner, add, link } = setup();
    add('boom', () => {
      throw new RangeError('bad');
    });
    add('half', () => (currentCall().progress(0.5, 'half'), 'done'));
    add('big', () => Buffer.alloc(2048));
    link.maxPayloadBytes = 1024;
    const [boom, half, big] = [invokeOf('boom'), invokeOf('half', [], { wantProgress: true }), invokeOf('big')];
    for (const i of [boom, half, big]) runner.invoke(link, i);
    await flush();
    const err = link.sent.find((f) => f.error?.attemptId === boom.attemptId)!.error!.error!;
    expect(err).toMatchObject({ code: 'REMOTE_ERROR', remoteName: 'RangeError', message: 'bad', nodeId: 'n1' });
    expect(link.kinds(half.attemptId)).toEqual(['progress', 'result']);
    expect(link.errorCode(big.attemptId)).toBe('PAYLOAD_TOO_LARGE');
  });
});

describe('CallRunner arguments in parts', () => {
  /** An invocation whose encoded arguments come as a first part of `first` bytes, then `rest` parts. */
  function inParts(args: unknown[], first: number, partBytes: number) {
    const whole = invokeOf('f', args);
    const bytes = whole.args;
    const invoke = { ...whole, args: bytes.subarray(0, first), argsSize: bytes.length };
    const parts: Buffer[] = [];
    for (let at = first; at < bytes.length; at += partBytes) parts.push(Buffer.from(bytes.subarray(at, at + partBytes)));
    return { invoke, parts, bytes };
  }

  it('runs the call with the parts joined in order, once the announced size has arrived', async () => {
    const { runner, add, link } = setup();
    const f = manualHandler();
    add('f', f.handler);
    const value = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
    const { invoke, parts } = inParts([value], 100, 1024);
    runner.invoke(link, invoke);
    for (const part of parts.slice(0, -1)) runner.argsPart(link, invoke.attemptId, part);
    expect(f.started).toHaveLength(0); // not all here yet
    const last = parts.at(-1)!;
    runner.argsPart(link, invoke.attemptId, last);
    expect(f.started).toHaveLength(1);
    // Each part was copied as it came: the frames that carried them may be reused or dropped.
    for (const part of parts) part.fill(0xee);
    expect(Buffer.compare(f.started[0]!.arg as Buffer, value)).toBe(0);
    f.started[0]!.resolve('ok');
    await flush();
    expect(resultOf(link, invoke.attemptId)).toBe('ok');
  });

  it('refuses as InvalidArgument arguments that come to more than announced, and forgets them', () => {
    const { runner, add, link } = setup();
    const f = manualHandler();
    add('f', f.handler);
    const { invoke, parts } = inParts([Buffer.alloc(3000, 1)], 10, 1000);
    runner.invoke(link, invoke);
    for (const part of parts.slice(0, -1)) runner.argsPart(link, invoke.attemptId, part);
    runner.argsPart(link, invoke.attemptId, Buffer.concat([parts.at(-1)!, Buffer.from([1])]));
    expect(link.errorCode(invoke.attemptId)).toBe('INVALID_ARGUMENT');
    expect(link.sent.find((x) => x.error?.attemptId === invoke.attemptId)!.error!.error!.message).toContain(`more than the ${invoke.argsSize} bytes announced`);
    runner.argsPart(link, invoke.attemptId, Buffer.from([1])); // after the refusal: ignored
    expect(link.sent.filter((x) => x.error?.attemptId === invoke.attemptId)).toHaveLength(1);
    expect(f.started).toHaveLength(0);
  });

  it('refuses announced arguments above the gateway limit before anything is collected', () => {
    const { runner, add, link } = setup();
    add('f', manualHandler().handler);
    link.maxPayloadBytes = 1000;
    const { invoke } = inParts([Buffer.alloc(3000, 1)], 10, 1000);
    runner.invoke(link, invoke);
    expect(link.errorCode(invoke.attemptId)).toBe('PAYLOAD_TOO_LARGE');
  });

  it('drops the collected parts of a cancelled invocation', () => {
    const { runner, add, link } = setup();
    const f = manualHandler();
    add('f', f.handler);
    const { invoke, parts } = inParts([Buffer.alloc(3000, 1)], 10, 1000);
    runner.invoke(link, invoke);
    runner.argsPart(link, invoke.attemptId, parts[0]!);
    runner.cancel(link, invoke.attemptId, 'client');
    for (const part of parts.slice(1)) runner.argsPart(link, invoke.attemptId, part);
    expect(f.started).toHaveLength(0);
    expect(link.sent).toHaveLength(0);
  });
});
