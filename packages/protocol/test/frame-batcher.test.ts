import { describe, expect, it } from 'vitest';
import { FrameBatcher, MAX_BATCH_FRAMES, SOLO_FRAME_BYTES } from '../src/frame-batcher.js';

interface F {
  id?: number;
  bytes?: number;
  batch?: { frames: F[] };
}

/** A batcher whose turns end when the test says so. */
function harness() {
  const written: F[] = [];
  let pending: (() => void) | undefined;
  const batcher = new FrameBatcher<F>({
    write: (f) => {
      written.push(f);
      return true;
    },
    batch: (frames) => ({ batch: { frames } }),
    sizeOf: (f) => f.bytes ?? 0,
    defer: (flush) => {
      expect(pending).toBeUndefined();
      pending = flush;
    },
  });
  const endTurn = () => {
    const flush = pending;
    pending = undefined;
    flush?.();
  };
  const shape = () => written.map((f) => (f.batch ? f.batch.frames.map((x) => x.id) : f.id));
  return { batcher, written, endTurn, shape };
}

describe('FrameBatcher', () => {
  it('writes the first frame of a quiet turn at once and batches the rest of that turn', () => {
    const h = harness();
    h.batcher.push({ id: 1 });
    expect(h.shape()).toEqual([1]); // written before the turn ends
    h.batcher.push({ id: 2 });
    h.batcher.push({ id: 3 });
    expect(h.shape()).toEqual([1]);
    h.endTurn();
    expect(h.shape()).toEqual([1, [2, 3]]);
  });

  it('keeps writing lone frames at once while every turn carries one', () => {
    const h = harness();
    for (let i = 1; i <= 5; i++) {
      h.batcher.push({ id: i });
      expect(h.written).toHaveLength(i);
      h.endTurn();
    }
    expect(h.shape()).toEqual([1, 2, 3, 4, 5]);
  });

  it('after a busy turn batches the next turn whole, and turns quiet again after a turn of one frame', () => {
    const h = harness();
    h.batcher.push({ id: 1 });
    h.batcher.push({ id: 2 });
    h.endTurn(); // busy: 2 frames (the second went alone, a batch of one is never made)
    expect(h.shape()).toEqual([1, 2]);
    h.batcher.push({ id: 3 });
    h.batcher.push({ id: 4 });
    expect(h.shape()).toEqual([1, 2]); // busy: the first frame of the turn waits too
    h.endTurn();
    expect(h.shape()).toEqual([1, 2, [3, 4]]);
    h.batcher.push({ id: 5 }); // still busy-mode: queued
    expect(h.shape()).toEqual([1, 2, [3, 4]]);
    h.endTurn(); // a turn of one frame
    expect(h.shape()).toEqual([1, 2, [3, 4], 5]);
    h.batcher.push({ id: 6 }); // quiet again: at once
    expect(h.shape()).toEqual([1, 2, [3, 4], 5, 6]);
    h.endTurn();
  });

  it('sends a large frame alone, after what was queued before it', () => {
    const h = harness();
    h.batcher.push({ id: 1 });
    h.batcher.push({ id: 2 });
    h.batcher.push({ id: 3, bytes: SOLO_FRAME_BYTES });
    expect(h.shape()).toEqual([1, 2, 3]);
    h.endTurn();
    expect(h.shape()).toEqual([1, 2, 3]);
    // That turn carried two small frames (one of them flushed early by the large one): busy.
    h.batcher.push({ id: 4 });
    expect(h.shape()).toEqual([1, 2, 3]);
    h.endTurn();
    expect(h.shape()).toEqual([1, 2, 3, 4]);
  });

  it('splits a turn at MAX_BATCH_FRAMES', () => {
    const h = harness();
    h.batcher.push({ id: 0 }); // first of the turn: at once
    for (let i = 1; i <= MAX_BATCH_FRAMES + 1; i++) h.batcher.push({ id: i });
    h.endTurn();
    expect(h.written).toHaveLength(3);
    expect(h.written[1]!.batch!.frames).toHaveLength(MAX_BATCH_FRAMES);
    expect(h.written[2]!.id).toBe(MAX_BATCH_FRAMES + 1); // the remainder, alone
    // A turn flushed early was still busy: the next turn's first frame waits for the turn's end.
    h.batcher.push({ id: 1000 });
    expect(h.written).toHaveLength(3);
    h.endTurn();
    expect(h.written[3]!.id).toBe(1000);
  });

  it('writes nothing once closed', () => {
    const h = harness();
    h.batcher.push({ id: 1 });
    h.batcher.push({ id: 2 });
    h.batcher.close();
    h.endTurn();
    h.batcher.push({ id: 3 });
    expect(h.shape()).toEqual([1]);
  });
});
