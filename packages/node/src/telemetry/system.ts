// Telemetry for the machine this process runs on, read through `systeminformation`.
//
// Cost on the development machine (2 vCPU AMD EPYC VM, Linux, Node 20.20, no GPU),
// timed with performance.now() and process.cpuUsage(), three runs:
//   steady sample(): 1.06 ms wall, ~1.4 ms CPU (mean of 50; os.cpus() ~0.35 ms, /proc/meminfo ~0.4 ms).
//   capabilities() with GPU discovery: 26-34 ms wall, 19-36 ms CPU.
// CPU utilisation is the busy share of os.cpus() tick counters between two samples.
// systeminformation's currentLoad() was measured first: it runs
// execSync('cat /proc/stat | grep cpu') to read steal time, blocking the event loop for
// ~7-12 ms per sample, once a second, on every node; steal time is not worth that.
// Sampling belongs on a timer (TelemetrySampler), never on the call path.
//
// si.graphics() costs the most per call: on Linux it shells out to lspci, clinfo,
// xdpyinfo and xrandr (~14 ms wall / 6 ms CPU here, where none is installed) and runs
// nvidia-smi with execFileSync, blocking the event loop for as long as nvidia-smi takes
// (tens of ms; up to seconds when the driver is not in persistence mode). Hence:
//   - GPUs are discovered once and cached; a machine where discovery finds none never
//     calls si.graphics() again (GPUs do not hot-plug in practice; restart the node).
//   - GPU figures are refreshed at most every `gpuRefreshMs` (default 5 s); samples in
//     between reuse the last GPU figures.
//
// Known limit of systeminformation on Linux: it only consults nvidia-smi after lspci
// succeeds, so a GPU container image without pciutils reports no GPUs.

import os from 'node:os';
import * as si from 'systeminformation';
import type { StaticCapabilities, TelemetryProvider, TelemetrySample } from './provider.js';

export const DEFAULT_GPU_REFRESH_MS = 5_000;

const MIB = 1024 * 1024;
const NVIDIA_PCI_VENDOR_ID = '10de';

/** The parts of a systeminformation graphics controller this provider reads. */
export interface GraphicsControllerInfo {
  vendor?: string;
  vendorId?: string;
  model?: string;
  name?: string;
  /** MiB, as systeminformation reports it (from nvidia-smi). */
  memoryTotal?: number;
  /** MiB. */
  memoryUsed?: number;
  /** 0..100. */
  utilizationGpu?: number;
}

/** The subset of `systeminformation` used here; injectable so tests can fake a GPU box. */
export interface SystemInfoSource {
  /** Per-core tick counters; when absent, os.cpus(). */
  cpuTimes?(): Array<{ times: os.CpuInfo['times'] }>;
  mem(): Promise<{ total: number; available: number; active: number }>;
  graphics(): Promise<{ controllers: GraphicsControllerInfo[] }>;
}

export interface SystemTelemetryProviderOptions {
  /** Minimum time between two GPU refreshes (ms). */
  gpuRefreshMs?: number;
  /** Clock for the GPU refresh rate (ms). */
  now?: () => number;
  /** Defaults to the `systeminformation` package. */
  source?: SystemInfoSource;
  /** Defaults to os.availableParallelism(). */
  cpuCores?: () => number;
}

type GpuSample = TelemetrySample['gpus'][number];

export class SystemTelemetryProvider implements TelemetryProvider {
  private readonly source: SystemInfoSource;
  private readonly gpuRefreshMs: number;
  private readonly now: () => number;
  private readonly cpuCores: () => number;
  private lastCpuTicks: { busy: number; total: number } | undefined;

  private lastCpuPercent = 0;
  private lastMemoryUsedBytes = 0;
  private lastMemoryTotalBytes = 0;

  private gpusDiscovered = false;
  private gpuModels: Array<{ model: string; vramTotalBytes: number }> = [];
  private lastGpus: GpuSample[] = [];
  private lastGpuAttemptAt = Number.NEGATIVE_INFINITY;
  private gpuRefresh: Promise<void> | undefined;

  constructor(options: SystemTelemetryProviderOptions = {}) {
    this.source = options.source ?? si;
    this.gpuRefreshMs = Math.max(0, options.gpuRefreshMs ?? DEFAULT_GPU_REFRESH_MS);
    this.now = options.now ?? (() => performance.now());
    this.cpuCores = options.cpuCores ?? (() => os.availableParallelism());
  }

  async capabilities(): Promise<StaticCapabilities> {
    await Promise.all([this.readMemory(), this.readGpus()]);
    return {
      // availableParallelism honours CPU affinity (taskset, cpuset), which os.cpus()
      // and si.cpu() do not: it is the number of cores this node can actually use.
      cpuCores: positiveOr(safeCall(this.cpuCores), 1),
      // A node must never register with zero memory: the OS module is a reliable floor.
      memoryTotalBytes: this.lastMemoryTotalBytes > 0 ? this.lastMemoryTotalBytes : os.totalmem(),
      gpus: this.gpuModels.map((g, index) => ({ index, model: g.model, vramTotalBytes: g.vramTotalBytes })),
    };
  }

  async sample(): Promise<TelemetrySample> {
    await Promise.all([this.readCpu(), this.readMemory(), this.readGpus()]);
    return {
      cpuPercent: this.lastCpuPercent,
      memoryUsedBytes: this.lastMemoryUsedBytes,
      memoryTotalBytes: this.lastMemoryTotalBytes,
      gpus: this.lastGpus.map((g) => ({ ...g })),
    };
  }

  private async readCpu(): Promise<void> {
    try {
      let busy = 0;
      let total = 0;
      for (const { times } of this.source.cpuTimes?.() ?? os.cpus()) {
        const all = times.user + times.nice + times.sys + times.irq + times.idle;
        total += all;
        busy += all - times.idle;
      }
      if (!Number.isFinite(busy) || !Number.isFinite(total)) return;
      const prev = this.lastCpuTicks;
      this.lastCpuTicks = { busy, total };
      // The first sample has no interval: it reports the average since boot.
      const dTotal = prev ? total - prev.total : total;
      const dBusy = prev ? busy - prev.busy : busy;
      if (dTotal > 0) this.lastCpuPercent = clamp((100 * dBusy) / dTotal, 0, 100);
    } catch {
      // Keep the last good figure: a heartbeat with a stale CPU figure beats none.
    }
  }

  private async readMemory(): Promise<void> {
    try {
      const mem = await this.source.mem();
      if (!(Number.isFinite(mem.total) && mem.total > 0)) return;
      this.lastMemoryTotalBytes = mem.total;
      this.lastMemoryUsedBytes = clamp(memoryUsed(mem), 0, mem.total);
    } catch {
      // Keep the last good figures.
    }
  }

  /** Starts a GPU refresh when one is due and waits for any refresh in flight. */
  private async readGpus(): Promise<void> {
    const due = this.now() - this.lastGpuAttemptAt >= this.gpuRefreshMs;
    const worthAsking = !this.gpusDiscovered || this.gpuModels.length > 0;
    if (this.gpuRefresh === undefined && due && worthAsking) {
      this.gpuRefresh = this.refreshGpus().finally(() => {
        this.gpuRefresh = undefined;
      });
    }
    if (this.gpuRefresh !== undefined) await this.gpuRefresh;
  }

  private async refreshGpus(): Promise<void> {
    this.lastGpuAttemptAt = this.now();
    let controllers: GraphicsControllerInfo[];
    try {
      controllers = (await this.source.graphics()).controllers ?? [];
    } catch {
      return; // not discovered yet: retried after gpuRefreshMs; otherwise last good figures stay
    }
    const gpus = controllers.filter(isComputeGpu);

    if (!this.gpusDiscovered) {
      this.gpusDiscovered = true;
      this.gpuModels = gpus.map((c) => ({
        model: (c.name || c.model || 'unknown GPU').trim(),
        vramTotalBytes: mibToBytes(c.memoryTotal) ?? 0,
      }));
    } else if (gpus.length === 0) {
      // lspci or nvidia-smi failing once is likelier than every GPU vanishing at once.
      return;
    }

    this.lastGpus = gpus.map((c, index) => {
      const previous = this.lastGpus[index];
      const utilization = finite(c.utilizationGpu);
      return {
        index,
        utilizationPercent: utilization !== undefined ? clamp(utilization, 0, 100) : (previous?.utilizationPercent ?? 0),
        vramUsedBytes: mibToBytes(c.memoryUsed) ?? previous?.vramUsedBytes ?? 0,
        vramTotalBytes: mibToBytes(c.memoryTotal) ?? previous?.vramTotalBytes ?? this.gpuModels[index]?.vramTotalBytes ?? 0,
      };
    });
  }
}

/**
 * "Used" memory is total − available. `available` (Linux MemAvailable) is the kernel's
 * estimate of what a new workload can get without swapping, so the difference is the
 * memory a scheduler cannot hand out. `active` would count recently touched page cache,
 * which the kernel reclaims on demand, and si's own `used` (total − free) counts all
 * cache, so both make an idle machine with a warm cache look full.
 * Falls back to `active` where a platform reports no `available`.
 */
function memoryUsed(mem: { total: number; available: number; active: number }): number {
  if (Number.isFinite(mem.available) && mem.available > 0 && mem.available <= mem.total) {
    return mem.total - mem.available;
  }
  return Number.isFinite(mem.active) ? mem.active : 0;
}

/**
 * A controller counts when it reports its own memory (systeminformation fills
 * memoryTotal from nvidia-smi) or is NVIDIA. Integrated and display-only adapters
 * (Intel iGPUs, server BMC VGA chips) are left out: they cannot run the work.
 * An NVIDIA card without nvidia-smi gets vramTotalBytes 0 ("unknown"): lspci's figure
 * is the largest PCI BAR, often 256 MiB on a 24 GiB card, so it would mislead routing.
 */
function isComputeGpu(c: GraphicsControllerInfo): boolean {
  if (finite(c.memoryTotal) !== undefined) return true;
  if ((c.vendorId ?? '').toLowerCase().replace(/^0x/, '') === NVIDIA_PCI_VENDOR_ID) return true;
  return /nvidia/i.test(`${c.vendor ?? ''} ${c.model ?? ''} ${c.name ?? ''}`);
}

function mibToBytes(mib: number | undefined): number | undefined {
  const value = finite(mib);
  return value === undefined || value < 0 ? undefined : Math.round(value * MIB);
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function positiveOr(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

function safeCall(fn: () => number): number | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
