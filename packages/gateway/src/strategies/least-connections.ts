import { fewestInFlight } from './candidate-math.js';
import type { Candidate, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

/**
 * Fewest calls of this function in flight at the gateway (nginx `least_conn`). The gateway's
 * own count is exact and current, unlike node telemetry, so this reacts within one call.
 * Ties are broken at random so that idle nodes share a burst instead of the first taking it.
 */
export class LeastConnectionsStrategy implements Strategy {
  readonly name = 'least_connections';

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    return fewestInFlight(candidates, context.random);
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'least_connections', create: () => new LeastConnectionsStrategy() });
}
