// Runs on the metrics writer thread: one write connection per store, used only here.
// Every request is answered, failures included (as data), so the thread never dies of a
// full disk or a locked file and the store can count what was dropped.
import { parentPort, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { ChunkWriter, deleteExpired, errorMessage } from './store-writer.js';
import type { OpenRequest, WriterAnswer, WriterError, WriterRequest } from './writer-thread.js';

function failure(err: unknown): WriterError {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? { message: errorMessage(err), code } : { message: errorMessage(err) };
}

function serve({ port, answered, path, busyTimeoutMs }: OpenRequest): void {
  const answer = (a: WriterAnswer, transfer?: ArrayBuffer[]) => {
    port.postMessage(a, transfer);
    // After the message is queued: a store woken by this finds the answer on its channel.
    Atomics.store(answered, 0, a.seq);
    Atomics.notify(answered, 0);
  };
  let db: Database.Database;
  let writer: ChunkWriter;
  try {
    // The store's own connection created the file, set WAL (which the file keeps) and migrated it.
    db = new Database(path, { timeout: busyTimeoutMs, fileMustExist: true });
    db.pragma('synchronous = NORMAL');
    writer = new ChunkWriter(db);
  } catch (err) {
    answer({ op: 'opened', seq: 1, error: failure(err) });
    port.close();
    return;
  }
  answer({ op: 'opened', seq: 1 });
  port.on('message', (r: WriterRequest) => {
    switch (r.op) {
      case 'write': {
        const c = r.chunk;
        let error: WriterError | undefined;
        try {
          writer.write([{ chunk: c, from: 0, to: c.rows }], c.events);
        } catch (err) {
          error = failure(err);
        }
        const buffers = { numbers: c.numbers.buffer as ArrayBuffer, ids: c.ids.buffer as ArrayBuffer };
        answer({ op: 'written', seq: r.seq, rows: c.rows + c.events.length, buffers, ...(error ? { error } : {}) }, [buffers.numbers, buffers.ids]);
        return;
      }
      case 'retention':
        try {
          answer({ op: 'retained', seq: r.seq, result: deleteExpired(db, r.cutoff, r.maxRows) });
        } catch (err) {
          answer({ op: 'retained', seq: r.seq, result: { deletedCalls: 0, deletedEvents: 0 }, error: failure(err) });
        }
        return;
      case 'sync':
        answer({ op: 'synced', seq: r.seq });
        return;
      case 'close':
        try {
          db.pragma('optimize');
        } catch {
          // only a planner hint; closing matters more
        }
        try {
          db.close();
        } catch {
          // the store's answer is the same either way: this connection is done
        }
        answer({ op: 'closed', seq: r.seq });
        port.close();
        return;
    }
  });
}

parentPort!.on('message', (m: OpenRequest) => serve(m));
