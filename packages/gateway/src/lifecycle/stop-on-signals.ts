// For programs that embed a gateway: SIGTERM / SIGINT stop it gracefully, as the
// command-line gateway does.
import { onShutdownSignals, type ShutdownSignalOptions } from '@easyremote/protocol';
import type { Gateway } from '../gateway.js';

export interface GatewaySignalOptions extends ShutdownSignalOptions {
  /** How long calls in flight may take to finish (ms); default: the gateway's `shutdownGraceMs`. */
  graceMs?: number;
}

/**
 * The first signal stops the gateway with `stop({ graceMs })`: new calls are refused
 * GATEWAY_UNAVAILABLE, calls in flight get the grace to finish, every metrics row is
 * written, then the process exits 0. A second signal ends the grace at once (calls still
 * in flight are ended CANCELLED, rows are still written) and exits 1; a third exits at
 * once. Returns what removes the listeners.
 */
export function stopOnSignals(gateway: Gateway, options: GatewaySignalOptions = {}): () => void {
  const graceMs = options.graceMs ?? gateway.settings.shutdownGraceMs;
  return onShutdownSignals(
    {
      describe: () => `gateway stopping: new calls refused, ${gateway.openCalls} call(s) in flight get up to ${graceMs} ms to finish`,
      graceful: () => gateway.stop({ graceMs }),
      force: () => gateway.stop({ graceMs: 0 }),
    },
    // By default the helper's lines are the gateway's own log lines.
    { log: (line) => gateway.logger.info(line), ...options },
  );
}
