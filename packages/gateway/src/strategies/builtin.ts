// The strategies that ship with the gateway. Each file declares its own options and
// registers itself from its setup(); this list is the one place that knows them all.
import { setup as consistentHash } from './consistent-hash.js';
import { setup as costAware } from './cost-aware.js';
import { setup as dynamic } from './dynamic.js';
import { setup as latencyBased } from './latency-based.js';
import { setup as leastConnections } from './least-connections.js';
import { setup as leastLoad } from './least-load.js';
import { setup as pickFirst } from './pick-first.js';
import { setup as powerOfTwo } from './power-of-two.js';
import { setup as random } from './random.js';
import { setup as resourceAware } from './resource-aware.js';
import { setup as roundRobin } from './round-robin.js';
import { setup as smartAdaptive } from './smart-adaptive.js';
import type { RegisterStrategy } from './strategy.js';
import { setup as weightedRoundRobin } from './weighted-round-robin.js';

const BUILTIN_SETUPS: ReadonlyArray<(register: RegisterStrategy) => void> = [
  pickFirst,
  roundRobin,
  weightedRoundRobin,
  random,
  leastConnections,
  leastLoad,
  powerOfTwo,
  resourceAware,
  latencyBased,
  costAware,
  consistentHash,
  smartAdaptive,
  dynamic,
];

/** Registers every built-in strategy with `register`; the registry calls this once. */
export function registerBuiltinStrategies(register: RegisterStrategy): void {
  for (const setup of BUILTIN_SETUPS) setup(register);
}
