// An encoding held as consecutive segments instead of one buffer. A large argument or
// result, encoded into one buffer, took one fresh allocation of its whole size per call
// (16 MiB for a 16 MiB Buffer): the operating system maps and faults in new pages for
// it every time, which cost the client and the node more than the copy itself. Held in
// chunks the size of a payload part, the same bytes take allocations the allocator
// reuses, and each part that goes on the wire is one chunk, sent without another copy.

/** Bytes of an encoding, in order: the concatenation of `segments`, `length` in all. */
export class SegmentedBytes {
  constructor(
    readonly segments: readonly Buffer[],
    readonly length: number,
  ) {}

  static of(bytes: Buffer): SegmentedBytes {
    return new SegmentedBytes([bytes], bytes.length);
  }

  /**
   * Bytes [from, to) (clamped to the length): a view of one segment when they lie in
   * one, else a copy of the pieces.
   */
  slice(from: number, to: number): Buffer {
    const end = Math.min(to, this.length);
    if (end <= from) return Buffer.alloc(0);
    const segments = this.segments;
    let base = 0;
    let i = 0;
    while (base + segments[i]!.length <= from) base += segments[i++]!.length;
    const first = segments[i]!;
    if (end - base <= first.length) return first.subarray(from - base, end - base);
    const out = Buffer.allocUnsafe(end - from);
    let at = 0;
    let offset = from - base;
    while (at < out.length) {
      const s = segments[i++]!;
      const n = Math.min(s.length - offset, out.length - at);
      s.copy(out, at, offset, offset + n);
      at += n;
      offset = 0;
    }
    return out;
  }

  /** All the bytes as one buffer: the segment itself when there is one, else a copy. */
  whole(): Buffer {
    return this.segments.length === 1 ? this.segments[0]! : Buffer.concat(this.segments as Buffer[], this.length);
  }
}
