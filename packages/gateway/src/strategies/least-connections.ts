import { pickRandom } from './random.js';
import type { Candidate, SelectContext, Strategy } from './strategy.js';

/**
 * Fewest calls of this function in flight at the gateway (nginx `least_conn`). The gateway's
 * own count is exact and current, unlike node telemetry, so this reacts within one call.
 * Ties are broken at random so that idle nodes share a burst instead of the first taking it.
 */
export class LeastConnectionsStrategy implements Strategy {
  readonly name = 'least_connections';

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const fewest = Math.min(...candidates.map((c) => c.inFlight));
    return pickRandom(candidates.filter((c) => c.inFlight === fewest), context.random);
  }
}
