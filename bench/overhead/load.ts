// Closed-loop load: `inFlight` callers, each issuing its next call when the last answers,
// for a fixed time; and medians with their spread across rounds.
import { performance } from 'node:perf_hooks';
import { percentile } from '../lib.js';

export type CallOnce = () => Promise<unknown>;

export interface Cell {
  rate: number;
  p50: number;
  p99: number;
  done: number;
  seconds: number;
}

/** A cell that has not finished this long after its end has a call hanging; fail the run. */
const HANG_MS = 20_000;

export async function closedLoop(call: CallOnce, inFlight: number, seconds: number): Promise<Cell> {
  const lat: number[] = [];
  const started = performance.now();
  const until = started + seconds * 1000;
  let done = 0;
  const workers = Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await call();
        lat.push(performance.now() - t0);
        done++;
      }
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`calls still in flight ${HANG_MS} ms after a ${seconds} s window`)), seconds * 1000 + HANG_MS);
  });
  try {
    await Promise.race([workers, hung]);
  } finally {
    clearTimeout(timer);
  }
  const elapsed = (performance.now() - started) / 1000;
  return { rate: done / elapsed, p50: percentile(lat, 50), p99: percentile(lat, 99), done, seconds: elapsed };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** `median (min–max)`, each number formatted by `fmt`. */
export function spread(xs: number[], fmt: (x: number) => string): string {
  if (xs.length === 0) return '–';
  if (xs.length === 1) return fmt(xs[0]!);
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}
