// A strategy selection guide, as a function a user (or the CLI) can ask:
// "what should this function use?". Advice only; nothing here changes routing.

export interface RecommendConstraints {
  /** Spend matters more than speed. */
  budgetLimited?: boolean;
  /** Callers wait on the answer; tail latency matters most. */
  latencyCritical?: boolean;
  /** Nodes come and go or degrade; the strategy should learn around them. */
  highAvailability?: boolean;
  /** The function needs a GPU, so placement by free resources matters. */
  requiresGpu?: boolean;
  /** Calls with the same key must reach the same node (local files, warm caches). */
  sessionAffinity?: boolean;
}

export interface Recommendation {
  strategy: string;
  /** Runs when the strategy returns none; always one that picks whenever a node exists. */
  fallbackStrategy: string;
  reason: string;
}

interface Rule {
  strategy: string;
  fallbackStrategy: string;
  why: string;
}

const RESOURCE: Rule = { strategy: 'resource_aware', fallbackStrategy: 'least_load', why: 'heavy jobs go where CPU, memory and GPU are free' };
const LATENCY: Rule = { strategy: 'latency_based', fallbackStrategy: 'least_connections', why: 'callers wait, so the lowest expected latency wins' };
const COST: Rule = { strategy: 'cost_aware', fallbackStrategy: 'least_load', why: 'throughput per unit of cost matters more than speed' };
const ADAPTIVE: Rule = { strategy: 'smart_adaptive', fallbackStrategy: 'least_connections', why: 'a mixed workload is best served by learning each node\'s speed' };
const SIMPLE: Rule = { strategy: 'round_robin', fallbackStrategy: 'random', why: 'identical nodes and light work need nothing smarter than rotation' };
const AFFINITY: Rule = { strategy: 'consistent_hash', fallbackStrategy: 'least_connections', why: 'calls sharing a key must reach the node holding its state' };

const USE_CASES: Readonly<Record<string, Rule>> = {
  hpc: RESOURCE,
  ml_training: RESOURCE,
  training: RESOURCE,
  gpu: RESOURCE,
  real_time: LATENCY,
  realtime: LATENCY,
  inference: LATENCY,
  real_time_inference: LATENCY,
  batch: COST,
  batch_processing: COST,
  interactive: ADAPTIVE,
  mixed: ADAPTIVE,
  simple: SIMPLE,
  stateful: AFFINITY,
  session: AFFINITY,
};

/**
 * Recommends a strategy and a fallback for a use case.
 *
 * Accepted `useCase` strings (case-insensitive; spaces and hyphens read as underscores):
 * - `hpc`, `ml_training`, `training`, `gpu` → resource_aware
 * - `real_time`, `realtime`, `inference`, `real_time_inference` → latency_based
 * - `batch`, `batch_processing` → cost_aware
 * - `interactive`, `mixed` → smart_adaptive
 * - `simple` → round_robin
 * - `stateful`, `session` → consistent_hash
 * - anything else → smart_adaptive (it learns whatever the workload turns out to be)
 *
 * Constraints then override the use case, strongest first:
 * budgetLimited → cost_aware, latencyCritical → latency_based, sessionAffinity →
 * consistent_hash, highAvailability → smart_adaptive; requiresGpu turns an unknown or
 * simple use case into resource_aware.
 */
export function recommendStrategy(useCase: string, constraints: RecommendConstraints = {}): Recommendation {
  const key = useCase.trim().toLowerCase().replace(/[\s-]+/g, '_');
  const known = USE_CASES[key];
  let rule = known ?? ADAPTIVE;
  let reason = known !== undefined ? `use case "${key}": ${rule.why}` : `unknown use case "${useCase}": ${rule.why}`;

  const override = (r: Rule, constraint: string) => {
    rule = r;
    reason = `${constraint} overrides use case "${key}": ${r.why}`;
  };
  if (constraints.budgetLimited) override(COST, 'budgetLimited');
  else if (constraints.latencyCritical) override(LATENCY, 'latencyCritical');
  else if (constraints.sessionAffinity) override(AFFINITY, 'sessionAffinity');
  else if (constraints.highAvailability) override(ADAPTIVE, 'highAvailability');
  else if (constraints.requiresGpu && (known === undefined || known === SIMPLE)) override(RESOURCE, 'requiresGpu');

  return { strategy: rule.strategy, fallbackStrategy: rule.fallbackStrategy, reason };
}
