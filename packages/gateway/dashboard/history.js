// The charts' history, kept in the page: one point per second from each snapshot's last
// complete bucket, for the last HISTORY_POINTS seconds. A page opened later starts with
// an empty history; nothing is asked of the gateway's call database.

export const HISTORY_POINTS = 300;

export class History {
  constructor(limit = HISTORY_POINTS) {
    this.limit = limit;
    /** Seconds since the epoch (uPlot's x values). */
    this.times = [];
    /** function name → { rate, p50, p99 } arrays aligned with times (null: no call that second). */
    this.series = new Map();
    this.lastAt = -Infinity;
  }

  /** Adds a snapshot's bucket; a bucket seen already (two snapshots in one second) is skipped. */
  add(bucket, registered) {
    if (bucket.at <= this.lastAt) return;
    this.lastAt = bucket.at;
    const figures = new Map(bucket.functions.map((f) => [f.functionName, f]));
    const names = new Set([...registered, ...figures.keys(), ...this.series.keys()]);
    for (const name of names) {
      let s = this.series.get(name);
      if (s === undefined) {
        const gap = () => this.times.map(() => null);
        s = { rate: this.times.map(() => 0), p50: gap(), p99: gap() };
        this.series.set(name, s);
      }
      const f = figures.get(name);
      s.rate.push(f ? f.calls / bucket.seconds : 0);
      s.p50.push(f ? f.p50Ms : null);
      s.p99.push(f ? f.p99Ms : null);
    }
    this.times.push(bucket.at / 1000);
    if (this.times.length > this.limit) {
      this.times.shift();
      for (const s of this.series.values()) for (const a of [s.rate, s.p50, s.p99]) a.shift();
    }
    // A function that is gone and had no call in the whole history has nothing left to show.
    const known = new Set(registered);
    for (const [name, s] of this.series) if (!known.has(name) && s.rate.every((r) => r === 0)) this.series.delete(name);
  }

  /** uPlot data for one function: [times, rate, p50, p99]. */
  data(name) {
    const s = this.series.get(name);
    return s ? [this.times, s.rate, s.p50, s.p99] : [[], [], [], []];
  }
}
