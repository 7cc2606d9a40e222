// Keeps V8 from running a full collection every few MB while a process moves large payloads.
//
// V8 counts the ArrayBuffer memory a process has allocated since its last full collection
// (mark-compact) against the old generation's allocation limit, and that limit is set, at
// each full collection, from the live heap: for a small heap that allocates few objects it
// is the live heap plus about 8 MB (the growing factor is at its minimum, 1.1), and marking
// starts once the space left is smaller than the young generation. A gateway relaying a
// large payload, or a node receiving and returning one, allocates a few times the bytes it
// moves in buffers that die young (gRPC messages, HTTP/2 reads, parts), but little else, so
// scavenges are rare and those buffers add up past the margin between two of them: the
// process then runs a full collection every 8 MB or so (3-4 per 16 MiB round trip, each
// finding almost nothing) and stays in that mode. A process starts with a large limit, so
// it shows after the first full collections, e.g. after a quiet spell (V8's memory reducer).
//
// While held, this sets V8's heap growing factor (`--heap-growing-percent`) after every
// full collection so that the next limit is at least the live heap plus the headroom, as
// long as the live heap is under LIVE_CEILING times the headroom; above that, and once no
// one holds it, V8 chooses the factor itself again. A process started with its own
// --heap-growing-percent is left alone, and so is V8 from a worker thread (the flag is the
// process's; only the main thread sets it).
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { PerformanceObserver, constants } from 'node:perf_hooks';

/** Default headroom of a gateway and a compute node. */
export const DEFAULT_HEAP_HEADROOM_BYTES = 64 * 1024 * 1024;
/** At or above this many times the headroom of live heap, V8's own factor applies. */
export const LIVE_CEILING = 4;
/** The largest percent set (a nearly empty heap would otherwise ask for any factor). */
export const MAX_GROWING_PERCENT = 10_000;

/** What the policy reads and sets; the process's V8 by default, injected in tests. */
export interface HeapControl {
  /** Bytes in use on the JS heap (just after a full collection: about the live heap). */
  liveBytes(): number;
  /** Sets V8's --heap-growing-percent (0: V8 chooses). */
  setGrowingPercent(percent: number): void;
  /** Calls `listener` after each full collection; returns the unsubscribe. */
  onFullCollection(listener: () => void): () => void;
  /** True where nothing may be set: a process started with its own --heap-growing-percent, a worker thread. */
  readonly leaveAlone: boolean;
}

/** Refuses, at construction, a `heapHeadroomBytes` of `owner` ('gateway', 'node') that is not a number of bytes >= 0. */
export function checkHeapHeadroomBytes(bytes: unknown, owner: string): void {
  if (bytes !== undefined && !(typeof bytes === 'number' && Number.isFinite(bytes) && bytes >= 0)) throw new TypeError(`${owner} heapHeadroomBytes must be a number >= 0, got ${String(bytes)}`);
}

/** The percent that makes the next limit the live heap plus `headroom` (0: leave it to V8). */
export function growingPercentFor(liveBytes: number, headroomBytes: number): number {
  if (!(headroomBytes > 0) || !(liveBytes > 0) || liveBytes >= LIVE_CEILING * headroomBytes) return 0;
  return Math.min(MAX_GROWING_PERCENT, Math.ceil((headroomBytes / liveBytes) * 100));
}

/** Holders ask for a headroom each; the largest held applies. */
export class HeapHeadroom {
  private readonly held = new Map<symbol, number>();
  private unsubscribe: (() => void) | undefined;
  private percent = 0;

  constructor(private readonly control: HeapControl) {}

  /** Holds `bytes` of headroom until the returned release is called (0 or less: nothing held). */
  hold(bytes: number): () => void {
    if (!(bytes > 0) || this.control.leaveAlone) return () => {};
    const key = Symbol('heap headroom');
    this.held.set(key, bytes);
    this.unsubscribe ??= this.control.onFullCollection(() => this.adjust());
    this.adjust();
    return () => {
      if (!this.held.delete(key)) return;
      if (this.held.size === 0) {
        this.unsubscribe?.();
        this.unsubscribe = undefined;
      }
      this.adjust();
    };
  }

  /** The percent currently set (0: V8 chooses). */
  get growingPercent(): number {
    return this.percent;
  }

  private adjust(): void {
    let headroom = 0;
    for (const bytes of this.held.values()) headroom = Math.max(headroom, bytes);
    const percent = headroom === 0 ? 0 : growingPercentFor(this.control.liveBytes(), headroom);
    if (percent === this.percent) return;
    this.percent = percent;
    this.control.setGrowingPercent(percent);
  }
}

const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/** The process's V8. */
export const processHeapControl: HeapControl = {
  liveBytes: () => v8.getHeapStatistics().used_heap_size,
  setGrowingPercent: (percent) => v8.setFlagsFromString(`--heap-growing-percent=${percent}`),
  onFullCollection(listener) {
    const observer = new PerformanceObserver((list) => {
      if (list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) listener();
    });
    observer.observe({ entryTypes: ['gc'] });
    return () => observer.disconnect();
  },
  leaveAlone: !isMainThread || process.execArgv.some((arg) => FLAG.test(arg)),
};

/** The process's headroom (its `growingPercent` is what is set now). */
export const processHeapHeadroom = new HeapHeadroom(processHeapControl);

/**
 * Keeps at least `bytes` of old-generation headroom in this process's V8 heap until the
 * returned release is called (see the top of this file). A gateway and a compute node hold
 * their `heapHeadroomBytes` while they run; a client process that sends or receives large
 * payloads can hold it too.
 */
export function keepHeapHeadroom(bytes: number = DEFAULT_HEAP_HEADROOM_BYTES): () => void {
  return processHeapHeadroom.hold(bytes);
}
