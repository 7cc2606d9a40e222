// Whether this gateway should be sent traffic now, for /readyz: a load balancer or an
// orchestrator takes it out of rotation while it starts, while it stops, and while its
// metrics store cannot write (every call would lose its row).
import type { GatewayState, MetricsHealth, MetricsStoreState, ReadinessDocument } from '@easyremote/protocol';

export class Readiness {
  state: GatewayState = 'starting';

  /** `store`: the metrics store's health, undefined when the gateway has none. */
  constructor(private readonly store: () => MetricsHealth | undefined) {}

  check(): ReadinessDocument {
    const health = this.store();
    const metricsStore: MetricsStoreState = health === undefined ? 'disabled' : health.closed ? 'closed' : health.ok ? 'ok' : 'failing';
    const reason =
      this.state === 'starting'
        ? 'the gateway is starting'
        : this.state === 'stopping'
          ? 'the gateway is stopping'
          : metricsStore === 'failing' || metricsStore === 'closed'
            ? `the metrics store cannot write: ${health?.lastError ?? 'it is closed'}`
            : undefined;
    return reason === undefined ? { ready: true, state: this.state, metricsStore } : { ready: false, state: this.state, metricsStore, reason };
  }
}
