// What `status` and `top` show, read from the gateway's Admin service in one round.
import type { AdminClient, AlertsDocument, FunctionInfo, MetricsDocument, NodeInfo } from '@easyremote/client';

export interface ClusterSnapshot {
  readonly gateway: string;
  readonly nodes: NodeInfo[];
  readonly functions: FunctionInfo[];
  /** Live figures over the gateway's window (the last minute), with call counters since start per node. */
  readonly live: MetricsDocument['live'];
  /** Alerts that hold now. */
  readonly alerts: AlertsDocument['active'];
}

export async function readSnapshot(admin: AdminClient): Promise<ClusterSnapshot> {
  const [nodes, functions, metrics, alerts] = await Promise.all([admin.nodes(), admin.functions(), admin.metrics(), admin.alerts()]);
  return { gateway: admin.address, nodes, functions, live: metrics.live, alerts: alerts.active };
}
