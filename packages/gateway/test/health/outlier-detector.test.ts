import { describe, expect, it } from 'vitest';
import {
  OutlierDetector,
  type EjectedEvent,
  type OutlierDetectorOptions,
  type ReadmittedEvent,
} from '../../src/health/outlier-detector.js';

/** A detector on a hand-moved clock (no real waiting), with every event it emits collected.
 *  `providers: null` leaves providersOf out. */
function setup(options: OutlierDetectorOptions = {}, providers: number | null = 10) {
  const clock = { now: 1_000_000 };
  const detector = new OutlierDetector({
    ...(providers === null ? {} : { providersOf: () => providers }),
    now: () => clock.now,
    ...options,
  });
  const ejected: Array<EjectedEvent & { at: number }> = [];
  const readmitted: ReadmittedEvent[] = [];
  detector.on('ejected', (e) => ejected.push({ ...e, at: clock.now }));
  detector.on('readmitted', (e) => readmitted.push(e));
  const fail = (node: string, fn: string, n = 1) => {
    for (let i = 0; i < n; i++) detector.record(node, fn, false);
  };
  const succeed = (node: string, fn: string, n = 1) => {
    for (let i = 0; i < n; i++) detector.record(node, fn, true);
  };
  const advance = (ms: number) => {
    clock.now += ms;
  };
  /** Moves the clock to the end of the pair's latest ejection. */
  const waitOut = (node: string, fn: string) => {
    const last = ejected.filter((e) => e.nodeId === node && e.functionName === fn).at(-1);
    if (last === undefined) throw new Error(`${node}/${fn} was never ejected`);
    clock.now = Math.max(clock.now, last.untilMs);
  };
  return { clock, detector, ejected, readmitted, fail, succeed, advance, waitOut };
}

describe('OutlierDetector: consecutive failures', () => {
  it('ejects on the 5th consecutive failure, for that function only', () => {
    const { detector, ejected, fail, clock } = setup();
    fail('a', 'train', 4);
    expect(detector.state('a', 'train')).toBe('closed');
    expect(detector.isRoutable('a', 'train')).toBe(true);
    expect(ejected).toEqual([]);

    fail('a', 'train');
    expect(detector.state('a', 'train')).toBe('open');
    expect(detector.isRoutable('a', 'train')).toBe(false);
    expect(detector.onDispatch('a', 'train')).toBe(false);
    expect(ejected).toEqual([
      { nodeId: 'a', functionName: 'train', reason: 'consecutive_failures', untilMs: clock.now + 5_000, times: 1, at: clock.now },
    ]);

    // The same node's other function stays routable, and so does another node's 'train'.
    expect(detector.state('a', 'resize')).toBe('closed');
    expect(detector.isRoutable('a', 'resize')).toBe(true);
    expect(detector.onDispatch('a', 'resize')).toBe(true);
    expect(detector.isRoutable('b', 'train')).toBe(true);
  });

  it('a success resets the streak', () => {
    const { detector, fail, succeed } = setup({ minRequestVolume: 1_000 });
    fail('a', 'f', 4);
    succeed('a', 'f');
    fail('a', 'f', 4);
    expect(detector.state('a', 'f')).toBe('closed');
    fail('a', 'f');
    expect(detector.state('a', 'f')).toBe('open');
  });

  it('honours a custom threshold', () => {
    const { detector, fail } = setup({ consecutiveFailures: 2 });
    fail('a', 'f');
    expect(detector.state('a', 'f')).toBe('closed');
    fail('a', 'f');
    expect(detector.state('a', 'f')).toBe('open');
  });
});

describe('OutlierDetector: failure rate', () => {
  it('ejects once the window holds the minimum volume and half of it failed', () => {
    const { detector, ejected, fail, succeed } = setup();
    // Alternating, so the streak never passes 1 and only the rate can eject.
    for (let i = 0; i < 4; i++) {
      succeed('a', 'f');
      fail('a', 'f');
    }
    succeed('a', 'f');
    expect(detector.state('a', 'f')).toBe('closed'); // 9 calls: below the volume
    fail('a', 'f'); // 5 of 10
    expect(detector.state('a', 'f')).toBe('open');
    expect(ejected.map((e) => e.reason)).toEqual(['failure_rate']);
  });

  it('does not eject below the threshold', () => {
    const { detector, fail, succeed } = setup();
    for (let i = 0; i < 20; i++) {
      succeed('a', 'f', 2);
      fail('a', 'f');
    }
    expect(detector.state('a', 'f')).toBe('closed'); // 1 in 3
  });

  it('counts only calls inside the sliding window', () => {
    const { detector, fail, succeed, advance } = setup();
    fail('a', 'f', 4);
    succeed('a', 'f');
    // 13 s rather than 10: the new calls land in a different bucket from the old ones.
    advance(13_000);
    for (let i = 0; i < 2; i++) {
      succeed('a', 'f');
      fail('a', 'f');
    }
    succeed('a', 'f');
    // Counting the old calls it would be 6 failures of 10; the window holds 2 of 5.
    expect(detector.state('a', 'f')).toBe('closed');
    expect(detector.snapshot()).toMatchObject([{ windowRequests: 5, windowFailures: 2 }]);

    advance(5_000); // the five recent calls are still inside a 10 s window
    for (let i = 0; i < 2; i++) {
      succeed('a', 'f');
      fail('a', 'f');
    }
    fail('a', 'f'); // 5 of 10 in the window
    expect(detector.state('a', 'f')).toBe('open');
  });
});

describe('OutlierDetector: ejection time', () => {
  it('is base × times ejected, capped at the maximum', () => {
    const { detector, ejected, fail, waitOut } = setup({ consecutiveFailures: 1 });
    fail('a', 'f');
    for (let i = 1; i < 15; i++) {
      waitOut('a', 'f');
      expect(detector.state('a', 'f')).toBe('half_open');
      expect(detector.onDispatch('a', 'f')).toBe(true);
      fail('a', 'f'); // the probe fails: ejected again, for longer
    }
    expect(ejected.map((e) => e.times)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(ejected.map((e) => e.untilMs - e.at)).toEqual([
      5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000, 45_000, 50_000, 55_000, 60_000, 60_000, 60_000, 60_000,
    ]);
    expect(ejected.slice(1).every((e) => e.reason === 'probe_failed')).toBe(true);
  });

  it('uses the configured base and cap', () => {
    const { ejected, fail, waitOut, detector } = setup({ consecutiveFailures: 1, baseEjectionMs: 1_000, maxEjectionMs: 2_500 });
    fail('a', 'f');
    for (let i = 0; i < 3; i++) {
      waitOut('a', 'f');
      detector.onDispatch('a', 'f');
      fail('a', 'f');
    }
    expect(ejected.map((e) => e.untilMs - e.at)).toEqual([1_000, 2_000, 2_500, 2_500]);
  });
});

describe('OutlierDetector: max ejected share', () => {
  it('never ejects more than half of a function’s providers', () => {
    const { detector, ejected, fail } = setup({ consecutiveFailures: 1 }, 4);
    fail('a', 'f');
    fail('b', 'f');
    fail('c', 'f');
    expect(ejected.map((e) => e.nodeId)).toEqual(['a', 'b']);
    expect(detector.state('c', 'f')).toBe('closed');
    expect(detector.isRoutable('c', 'f')).toBe(true);
    expect(detector.snapshot().find((p) => p.nodeId === 'c')).toMatchObject({ suppressedEjections: 1 });

    // The cap is per function: 'g' has its own budget.
    fail('c', 'g');
    expect(detector.state('c', 'g')).toBe('open');
  });

  it('ejects the suppressed node once the cap has room again', () => {
    const { detector, fail, succeed, waitOut } = setup({ consecutiveFailures: 1 }, 4);
    fail('a', 'f');
    fail('b', 'f');
    fail('c', 'f');
    waitOut('a', 'f');
    detector.onDispatch('a', 'f');
    succeed('a', 'f'); // 'a' readmitted: one slot free
    fail('c', 'f');
    expect(detector.state('c', 'f')).toBe('open');
  });

  it('counts half-open pairs as ejected', () => {
    const { detector, fail, waitOut } = setup({ consecutiveFailures: 1 }, 2);
    fail('a', 'f');
    waitOut('a', 'f');
    expect(detector.state('a', 'f')).toBe('half_open');
    fail('b', 'f');
    expect(detector.state('b', 'f')).toBe('closed');
  });

  it('keeps a sole provider in rotation by default, and ejects it when the share allows', () => {
    const sole = setup({ consecutiveFailures: 1 }, 1);
    sole.fail('a', 'f', 20);
    expect(sole.detector.state('a', 'f')).toBe('closed');

    const allowed = setup({ consecutiveFailures: 1, maxEjectedShare: 1 }, 1);
    allowed.fail('a', 'f');
    expect(allowed.detector.state('a', 'f')).toBe('open');
  });

  it('falls back to the providers it has seen without a providersOf callback', () => {
    const { detector, fail, succeed } = setup({ consecutiveFailures: 1 }, null);
    succeed('b', 'f');
    fail('a', 'f'); // 1 of 2 known
    expect(detector.state('a', 'f')).toBe('open');
    succeed('c', 'f');
    fail('d', 'f'); // would be 2 of 4: allowed
    expect(detector.state('d', 'f')).toBe('open');
    fail('b', 'f'); // 3 of 4: refused
    expect(detector.state('b', 'f')).toBe('closed');
  });
});

describe('OutlierDetector: half-open', () => {
  it('lets exactly one probe through once the ejection time has passed', () => {
    const { detector, fail, advance, waitOut } = setup();
    fail('a', 'f', 5);
    advance(4_999);
    expect(detector.state('a', 'f')).toBe('open');
    expect(detector.isRoutable('a', 'f')).toBe(false);
    expect(detector.onDispatch('a', 'f')).toBe(false);

    waitOut('a', 'f');
    expect(detector.state('a', 'f')).toBe('half_open');
    expect(detector.isRoutable('a', 'f')).toBe(true);
    expect(detector.onDispatch('a', 'f')).toBe(true); // the probe
    expect(detector.isRoutable('a', 'f')).toBe(false);
    expect(detector.onDispatch('a', 'f')).toBe(false);
    expect(detector.tryAcquireProbe('a', 'f')).toBe(false);
    expect(detector.state('a', 'f')).toBe('half_open');
    expect(detector.snapshot()).toMatchObject([{ state: 'half_open', probeInFlight: true }]);
  });

  it('a probe success readmits, emits readmitted and resets the streak', () => {
    const { detector, ejected, readmitted, fail, succeed, waitOut } = setup();
    fail('a', 'f', 5);
    waitOut('a', 'f');
    expect(detector.onDispatch('a', 'f')).toBe(true);
    succeed('a', 'f');
    expect(readmitted).toEqual([{ nodeId: 'a', functionName: 'f' }]);
    expect(detector.state('a', 'f')).toBe('closed');
    expect(detector.isRoutable('a', 'f')).toBe(true);
    expect(detector.onDispatch('a', 'f')).toBe(true);
    expect(detector.onDispatch('a', 'f')).toBe(true); // closed: no probe limit

    fail('a', 'f', 4);
    expect(detector.state('a', 'f')).toBe('closed');
    fail('a', 'f');
    // Ejected again soon after: the count has not decayed, so it lasts twice as long.
    expect(ejected.at(-1)).toMatchObject({ times: 2, reason: 'consecutive_failures' });
    expect(ejected.at(-1)!.untilMs - ejected.at(-1)!.at).toBe(10_000);
  });

  it('a probe failure re-ejects for longer, without readmitting', () => {
    const { detector, ejected, readmitted, fail, waitOut, clock } = setup();
    fail('a', 'f', 5);
    waitOut('a', 'f');
    detector.onDispatch('a', 'f');
    fail('a', 'f');
    expect(readmitted).toEqual([]);
    expect(detector.state('a', 'f')).toBe('open');
    expect(ejected.at(-1)).toEqual({
      nodeId: 'a',
      functionName: 'f',
      reason: 'probe_failed',
      untilMs: clock.now + 10_000,
      times: 2,
      at: clock.now,
    });
  });

  it('ignores late results while open: only a probe readmits, and the ejection is not extended', () => {
    const { detector, ejected, readmitted, fail, succeed, advance } = setup();
    fail('a', 'f', 5);
    advance(1_000);
    succeed('a', 'f', 3);
    fail('a', 'f', 10);
    expect(detector.state('a', 'f')).toBe('open');
    expect(readmitted).toEqual([]);
    expect(ejected).toHaveLength(1);
    advance(4_000);
    expect(detector.state('a', 'f')).toBe('half_open');
  });

  it('releaseProbe() and the probe timeout free the slot', () => {
    const { detector, fail, waitOut, advance } = setup({ probeTimeoutMs: 30_000 });
    fail('a', 'f', 5);
    waitOut('a', 'f');
    expect(detector.onDispatch('a', 'f')).toBe(true);
    detector.releaseProbe('a', 'f'); // e.g. the probe's caller cancelled
    expect(detector.isRoutable('a', 'f')).toBe(true);
    expect(detector.onDispatch('a', 'f')).toBe(true);
    advance(29_999);
    expect(detector.isRoutable('a', 'f')).toBe(false);
    advance(1);
    expect(detector.isRoutable('a', 'f')).toBe(true);
    expect(detector.state('a', 'f')).toBe('half_open');
  });
});

describe('OutlierDetector: decay and bookkeeping', () => {
  it('forgives one past ejection per ejectionDecayMs spent closed', () => {
    const { detector, ejected, fail, succeed, waitOut, advance } = setup({ consecutiveFailures: 1 });
    fail('a', 'f');
    waitOut('a', 'f');
    detector.onDispatch('a', 'f');
    fail('a', 'f'); // times 2
    waitOut('a', 'f');
    detector.onDispatch('a', 'f');
    succeed('a', 'f'); // readmitted with 2 ejections on record
    expect(detector.snapshot()).toMatchObject([{ state: 'closed', timesEjected: 2 }]);

    advance(59_999);
    expect(detector.snapshot()).toMatchObject([{ timesEjected: 2 }]);
    advance(1);
    expect(detector.snapshot()).toMatchObject([{ timesEjected: 1 }]);

    fail('a', 'f');
    expect(ejected.at(-1)).toMatchObject({ times: 2 });
    expect(ejected.at(-1)!.untilMs - ejected.at(-1)!.at).toBe(10_000);

    waitOut('a', 'f');
    detector.onDispatch('a', 'f');
    succeed('a', 'f');
    advance(5 * 60_000);
    expect(detector.snapshot()).toMatchObject([{ timesEjected: 0 }]);
    fail('a', 'f');
    expect(ejected.at(-1)).toMatchObject({ times: 1 });
  });

  it('forgetNode() drops every pair of that node', () => {
    const { detector, fail, succeed } = setup();
    fail('a', 'f', 5);
    fail('a', 'g', 5);
    succeed('b', 'f');
    detector.forgetNode('a');
    expect(detector.state('a', 'f')).toBe('closed');
    expect(detector.state('a', 'g')).toBe('closed');
    expect(detector.isRoutable('a', 'f')).toBe(true);
    expect(detector.snapshot().map((p) => p.nodeId)).toEqual(['b']);
  });

  it('isRoutable stays right through ejections, readmissions, re-ejections from half-open and forgotten nodes', () => {
    const { detector, fail, succeed, waitOut } = setup();
    fail('a', 'f', 5);
    waitOut('a', 'f');
    fail('a', 'f'); // the probe fails: ejected again, still one pair out
    expect(['a', 'x'].map((n) => detector.isRoutable(n, 'f'))).toEqual([false, true]);
    waitOut('a', 'f');
    succeed('a', 'f'); // readmitted: none out
    expect(detector.isRoutable('a', 'f')).toBe(true);
    fail('b', 'f', 5);
    fail('c', 'g', 5);
    expect(['a', 'b'].map((n) => detector.isRoutable(n, 'f'))).toEqual([true, false]);
    detector.forgetNode('b');
    detector.forgetNode('b');
    expect(['a', 'b', 'c'].map((n) => detector.isRoutable(n, 'f'))).toEqual([true, true, true]);
    expect(detector.isRoutable('c', 'g')).toBe(false);
    fail('d', 'f', 5);
    expect(detector.isRoutable('d', 'f')).toBe(false);
  });

  it('snapshot() describes each pair for operators', () => {
    const { detector, fail, succeed, clock } = setup();
    succeed('a', 'f', 2);
    fail('a', 'f', 3);
    fail('b', 'f', 5);
    expect(detector.snapshot()).toEqual([
      {
        nodeId: 'a',
        functionName: 'f',
        state: 'closed',
        consecutiveFailures: 3,
        windowRequests: 5,
        windowFailures: 3,
        timesEjected: 0,
        ejectedUntilMs: undefined,
        probeInFlight: false,
        suppressedEjections: 0,
      },
      {
        nodeId: 'b',
        functionName: 'f',
        state: 'open',
        consecutiveFailures: 0,
        windowRequests: 0,
        windowFailures: 0,
        timesEjected: 1,
        ejectedUntilMs: clock.now + 5_000,
        probeInFlight: false,
        suppressedEjections: 0,
      },
    ]);
  });

  it('rejects nonsensical options', () => {
    expect(() => new OutlierDetector({ consecutiveFailures: 0 })).toThrow(RangeError);
    expect(() => new OutlierDetector({ failureRateThreshold: 1.5 })).toThrow(RangeError);
    expect(() => new OutlierDetector({ maxEjectedShare: -0.1 })).toThrow(RangeError);
    expect(() => new OutlierDetector({ baseEjectionMs: 10_000, maxEjectionMs: 5_000 })).toThrow(RangeError);
  });
});
