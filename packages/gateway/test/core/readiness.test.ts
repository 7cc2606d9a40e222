import { describe, expect, it } from 'vitest';
import type { MetricsHealth } from '@easyremote/protocol';
import { Readiness } from '../../src/api/readiness.js';

const health = (over: Partial<MetricsHealth> = {}): MetricsHealth => ({
  ok: true,
  lastError: null,
  lastErrorAt: null,
  droppedRows: 0,
  droppedOnOverflow: 0,
  droppedOnWriteError: 0,
  bufferedRows: 0,
  writtenRows: 0,
  closed: false,
  ...over,
});

describe('Readiness (/readyz)', () => {
  it('ready only while serving with a store that writes, or none', () => {
    let store: MetricsHealth | undefined = health();
    const r = new Readiness(() => store);
    expect(r.check()).toEqual({ ready: false, state: 'starting', metricsStore: 'ok', reason: 'the gateway is starting' });
    r.state = 'serving';
    expect(r.check()).toEqual({ ready: true, state: 'serving', metricsStore: 'ok' });
    store = health({ ok: false, lastError: 'metrics write failed: SQLITE_FULL: database or disk is full' });
    expect(r.check()).toEqual({
      ready: false,
      state: 'serving',
      metricsStore: 'failing',
      reason: 'the metrics store cannot write: metrics write failed: SQLITE_FULL: database or disk is full',
    });
    store = undefined;
    expect(r.check()).toEqual({ ready: true, state: 'serving', metricsStore: 'disabled' });
    r.state = 'stopping';
    expect(r.check()).toEqual({ ready: false, state: 'stopping', metricsStore: 'disabled', reason: 'the gateway is stopping' });
    store = health({ closed: true });
    expect(r.check()).toEqual({ ready: false, state: 'stopping', metricsStore: 'closed', reason: 'the gateway is stopping' });
  });
});
