// Fixed figures for tests and simulations: a "GPU workstation" and a "laptop" can run
// side by side on one machine and look different to the gateway's strategies.

import type { StaticCapabilities, TelemetryProvider, TelemetrySample } from './provider.js';

export class StaticTelemetryProvider implements TelemetryProvider {
  private readonly caps: StaticCapabilities;
  private current: TelemetrySample;

  constructor(capabilities: StaticCapabilities, sample: TelemetrySample) {
    this.caps = cloneCapabilities(capabilities);
    this.current = cloneSample(sample);
  }

  /** Changes the figures later samples report; fields left out keep their values. */
  set(partial: Partial<TelemetrySample>): void {
    this.current = cloneSample({ ...this.current, ...partial });
  }

  // Copies in and out, so a test that mutates what it passed or received cannot
  // change the provider's figures behind its back.
  async capabilities(): Promise<StaticCapabilities> {
    return cloneCapabilities(this.caps);
  }

  async sample(): Promise<TelemetrySample> {
    return cloneSample(this.current);
  }
}

function cloneCapabilities(c: StaticCapabilities): StaticCapabilities {
  return { cpuCores: c.cpuCores, memoryTotalBytes: c.memoryTotalBytes, gpus: c.gpus.map((g) => ({ ...g })) };
}

function cloneSample(s: TelemetrySample): TelemetrySample {
  return {
    cpuPercent: s.cpuPercent,
    memoryUsedBytes: s.memoryUsedBytes,
    memoryTotalBytes: s.memoryTotalBytes,
    gpus: s.gpus.map((g) => ({ ...g })),
  };
}
