// For programs that run a node: SIGTERM / SIGINT drain it, as the command-line node does.
import { onShutdownSignals, type ShutdownSignalOptions } from '@easyremote/protocol';
import type { ComputeNode } from './compute-node.js';

/**
 * The first signal drains the node (`drain()`: the gateway sends it no new calls, those
 * running finish and their results are delivered), then the process exits 0. A second
 * signal stops it at once (`stop()`: running calls are aborted, their handlers' signals
 * fire) and exits 1; a third exits at once. Returns what removes the listeners.
 */
export function drainOnSignals(node: ComputeNode, options: ShutdownSignalOptions = {}): () => void {
  // By default the helper's lines are the node's own log lines.
  return onShutdownSignals(
    {
      describe: () => `node ${node.nodeId} draining: no new calls, ${node.activeCalls} call(s) in progress or waiting finish first`,
      graceful: () => node.drain(),
      force: () => node.stop(),
    },
    { log: (line) => node.logger.info(line), ...options },
  );
}
