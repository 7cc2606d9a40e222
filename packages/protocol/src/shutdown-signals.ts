// Stopping a process on SIGTERM / SIGINT the way operators expect: the first signal starts
// a graceful stop, a second one forces it, a third exits at once. Shared by the gateway's
// and the node's helpers (stopOnSignals, drainOnSignals) and the command-line program.

export interface ShutdownSignalOptions {
  /** Signals that stop the process. Default SIGTERM and SIGINT. */
  signals?: NodeJS.Signals[];
  /**
   * What happens once stopped, with the exit status: 0 after a graceful stop, 1 after a
   * forced one or when stopping failed. true (default): the process exits with it; false:
   * nothing; a function: it is called with it. Unless the process exits, the listeners are
   * removed once the stop is over.
   */
  exit?: boolean | ((status: number) => void);
  /** Where the helper says what it does. Default: the gateway's or the node's logger (info); console.error for others. */
  log?: (line: string) => void;
}

export interface ShutdownSteps {
  /** What the first signal starts, said in the log line (e.g. "draining: 3 calls in flight"). */
  describe: () => string;
  graceful: () => Promise<void>;
  /** What a second signal does: cut the graceful stop short. */
  force: () => Promise<void>;
}

/** Listens for the signals; returns what removes the listeners (a stop already started goes on). */
export function onShutdownSignals(steps: ShutdownSteps, options: ShutdownSignalOptions = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? true;
  const exitWith = (status: number) => {
    if (exit === true) process.exit(status);
    else if (exit !== false) exit(status);
  };
  const log = options.log ?? ((line: string) => console.error(line));
  let received = 0;
  let finished = false;
  const dispose = () => {
    for (const s of signals) process.off(s, onSignal);
  };
  // Whichever step settles first ends it; a stop that a second signal forced exits 1.
  const finish = (failed: boolean) => {
    if (finished) return;
    finished = true;
    dispose();
    exitWith(failed || received > 1 ? 1 : 0);
  };
  const run = (step: () => Promise<void>) =>
    step().then(
      () => finish(false),
      (err: unknown) => {
        log(`stopping failed: ${err instanceof Error ? err.message : String(err)}`);
        finish(true);
      },
    );
  function onSignal(signal: NodeJS.Signals): void {
    received++;
    if (received === 1) {
      log(`${signal}: ${steps.describe()}; send ${signal} again to force`);
      void run(steps.graceful);
    } else if (received === 2) {
      log(`${signal} again: forcing the stop`);
      void run(steps.force);
    } else {
      log(`${signal} a third time: exiting now`);
      finished = true;
      dispose();
      exitWith(1);
    }
  }
  for (const s of signals) process.on(s, onSignal);
  return dispose;
}
