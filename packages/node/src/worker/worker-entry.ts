// Runs inside a worker thread: loads the user's module once and runs its exported
// function on MessagePack arguments, replying with MessagePack bytes. The main thread's
// event loop (heartbeats, other calls) never waits on it.
import { parentPort, workerData } from 'node:worker_threads';
import { decodeArgs, encodeResult, type ResultProfile } from '@easyremote/protocol';

interface Job {
  id: number;
  args: Uint8Array;
  profile: ResultProfile;
}

const { module, exportName } = workerData as { module: string; exportName: string };
const loaded = (await import(module)) as Record<string, unknown>;
const fn = loaded[exportName];
if (typeof fn !== 'function') throw new TypeError(`${module} has no exported function ${exportName}`);

parentPort!.on('message', async ({ id, args, profile }: Job) => {
  try {
    const decoded = args.length === 0 ? [] : decodeArgs(args);
    const encoded = encodeResult(await (fn as (...a: unknown[]) => unknown)(...decoded), profile);
    // The encoding is a view of the codec's shared buffer, which posting would clone whole:
    // an exact copy is moved instead.
    const payload = new Uint8Array(encoded);
    parentPort!.postMessage({ id, ok: true, payload }, [payload.buffer]);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    parentPort!.postMessage({ id, ok: false, name: e.name, message: e.message, stack: e.stack ?? '', invalidArgs: e.message.startsWith('malformed MessagePack') || e.message.startsWith('arguments must be') });
  }
});
parentPort!.postMessage({ ready: true });
