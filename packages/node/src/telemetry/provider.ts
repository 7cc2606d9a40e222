// The node's view of its own machine. The shapes mirror what the register frame
// (capabilities) and the heartbeat frame (telemetry) carry, so the node can copy them
// onto the wire without reshaping; the gateway's strategies read the same figures.

/** What a node declares once, at registration. */
export interface StaticCapabilities {
  /** Logical cores this process may run on. */
  cpuCores: number;
  memoryTotalBytes: number;
  /** Index is the GPU's position in PCI bus order, the order nvidia-smi uses. */
  gpus: Array<{ index: number; model: string; vramTotalBytes: number }>;
}

/** Live figures, sent with every heartbeat. */
export interface TelemetrySample {
  /** Whole-machine CPU utilisation, 0..100 (not per core, so 100 = every core busy). */
  cpuPercent: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
  gpus: Array<{ index: number; utilizationPercent: number; vramUsedBytes: number; vramTotalBytes: number }>;
}

/**
 * A source of capabilities and samples. Implementations must not throw for a part of
 * the machine they cannot read: they report the last good figure or zero instead, so a
 * missing tool (no nvidia-smi, no lspci) never stops a node from registering.
 */
export interface TelemetryProvider {
  capabilities(): Promise<StaticCapabilities>;
  sample(): Promise<TelemetrySample>;
}
