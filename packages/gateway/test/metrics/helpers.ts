import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '../../src/metrics/call-record.js';

export function callRecord(overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    finishedAt: 1_000,
    functionName: 'train_model',
    nodeId: 'node-a',
    strategy: 'round_robin',
    client: '127.0.0.1:5000',
    caller: '',
    queueWaitMs: 1.5,
    execMs: 10,
    totalMs: 12.25,
    success: true,
    errorCode: '',
    cached: false,
    requestBytes: 100,
    responseBytes: 200,
    attempts: 1,
    ...overrides,
  };
}

/** A fresh temporary directory and a function that removes it. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'easyremote-metrics-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
