// A pool of worker threads for one CPU-bound function. One call per thread at a time;
// cancelling a call terminates its thread (the only way to stop code that never yields)
// and a fresh one replaces it on demand.
import { Worker } from 'node:worker_threads';
import { InvalidArgument, RemoteError, type ResultProfile } from '@easyremote/protocol';

type Reply = { id: number; ok: true; payload: Uint8Array } | { id: number; ok: false; name: string; message: string; stack: string; invalidArgs: boolean };

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  busy: boolean;
}

// Running from TypeScript sources (tsx, vitest) the entry is .ts; from dist it is .js.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = new URL(FROM_SOURCE ? './worker-entry.ts' : './worker-entry.js', import.meta.url);

/** Worker threads do not inherit tsx's loader: from sources, a tiny bootstrap registers it first. */
function createWorker(workerData: unknown): Worker {
  if (!FROM_SOURCE) return new Worker(ENTRY, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(ENTRY.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;

  constructor(
    private readonly functionName: string,
    private readonly module: string,
    private readonly exportName: string,
    private readonly size: number,
  ) {}

  private spawn(): Slot {
    const worker = createWorker({ module: this.module, exportName: this.exportName });
    worker.unref();
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: { ready?: boolean }) => {
        if (m.ready) {
          worker.off('error', reject);
          resolve();
        }
      };
      worker.once('message', onMessage);
      worker.once('error', reject);
    });
    const slot: Slot = { worker, ready, busy: false };
    worker.on('exit', () => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
    });
    this.slots.push(slot);
    return slot;
  }

  /**
   * Runs one call; the node's scheduler never runs more than `size` at once. The result
   * is encoded in `profile`, the one the call's Invoke asks for.
   */
  async run(args: Uint8Array, signal: AbortSignal, profile: ResultProfile = 'full'): Promise<Uint8Array> {
    let slot = this.slots.find((s) => !s.busy);
    if (slot === undefined) {
      if (this.slots.length >= this.size) throw new Error(`worker pool of ${this.functionName} is exhausted (${this.size})`);
      slot = this.spawn();
    }
    slot.busy = true;
    const s = slot;
    try {
      await s.ready;
      const id = this.nextId++;
      return await new Promise<Uint8Array>((resolve, reject) => {
        const onAbort = () => {
          void s.worker.terminate();
          reject(signal.reason);
        };
        const onExit = (code: number) => reject(new Error(`worker thread of ${this.functionName} exited with code ${code}`));
        const onError = (err: Error) => reject(err);
        const onMessage = (m: Reply) => {
          if (m.id !== id) return;
          cleanup();
          if (m.ok) resolve(m.payload);
          else if (m.invalidArgs) reject(new InvalidArgument(`${this.functionName}: ${m.message}`));
          else reject(new RemoteError(m.message, { remoteName: m.name, remoteStack: m.stack }));
        };
        const cleanup = () => {
          signal.removeEventListener('abort', onAbort);
          s.worker.off('message', onMessage).off('exit', onExit).off('error', onError);
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        s.worker.on('message', onMessage).once('exit', onExit).once('error', onError);
        s.worker.postMessage({ id, args, profile });
      });
    } finally {
      s.busy = false;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
