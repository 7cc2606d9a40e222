// What a node's heartbeat says about its load, and the rule by which a gateway counts the
// calls the node runs for its other gateways.
//
// A node linked to several gateways reports, per function, every call it is running or
// queueing, whichever gateway sent it. A gateway knows its own calls exactly and at once
// (they move with every dispatch); the others' only as of the last heartbeat. So, per
// function, when a heartbeat arrives:
//
//   elsewhere = max(0, (reported in_flight + reported queued) − own in flight now)
//
// and until the next heartbeat the gateway counts own (live) + elsewhere (fixed): for
// capacity (a provider is full at max_concurrent + queue_size) and in every strategy that
// counts calls (candidate-math's inFlightOf). Calls in transit make the difference small,
// never large: one this gateway sent that the node has not counted yet, or one the node
// finished whose result is still on its way, lowers it, and it never goes below 0. With
// one gateway it is 0 but for calls the gateway gave up on that the node still runs
// (a handler that ignores its cancel), which do occupy the node. Nothing expires on a
// timer: the next heartbeat replaces it, and it leaves with the node.
import type { FunctionLoad } from '@easyremote/protocol';
import type { FunctionEntry } from './function-entry.js';
import type { NodeSession } from './node-session.js';

/** The others' share of a function's calls on a node: what it reported beyond this gateway's own. */
export function elsewhereShare(reportedInFlight: number, reportedQueued: number, ownInFlight: number): number {
  const reported = reportedInFlight + reportedQueued;
  return Number.isFinite(reported) && reported > ownInFlight ? reported - ownInFlight : 0;
}

/**
 * A heartbeat's per-function figures: kept as reported, and each provider's share
 * elsewhere set by the rule above. Functions the node did not declare are ignored;
 * functions the heartbeat leaves out keep their last figures.
 */
export function applyReportedLoad(session: NodeSession, loads: readonly FunctionLoad[], functions: ReadonlyMap<string, FunctionEntry>): void {
  for (const f of loads) {
    if (!session.functions.has(f.name)) continue;
    const provider = functions.get(f.name)?.providers.get(session.nodeId);
    const own = provider?.session === session ? provider : undefined;
    const elsewhere = elsewhereShare(f.inFlight, f.queued, own?.inFlight ?? 0);
    if (own !== undefined) {
      own.inFlightElsewhere = elsewhere;
      own.queued = f.queued;
    }
    session.reported.set(f.name, { inFlight: f.inFlight, queued: f.queued, elsewhere });
  }
  let total = 0;
  for (const r of session.reported.values()) total += r.elsewhere;
  session.inFlightElsewhere = total;
}
