// What every process of bench:seed-lookaside agrees on: the scenarios and their functions.

export const STRATEGIES = ['pick_first', 'round_robin', 'least_load', 'default'] as const;
export const MODES = ['la', 'px'] as const;
export const WORK_MS = 500;
/** Calls that may wait on one backend: all 100 clients, as under pick_first. */
export const QUEUE = 100;

export function taskName(backends: number, strategy: (typeof STRATEGIES)[number], mode: (typeof MODES)[number]): string {
  return `task${backends}_${strategy}_${mode}`;
}
