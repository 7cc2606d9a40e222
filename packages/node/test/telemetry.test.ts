import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  StaticTelemetryProvider,
  SystemTelemetryProvider,
  TelemetrySampler,
  type GraphicsControllerInfo,
  type SystemInfoSource,
  type TelemetryProvider,
  type TelemetrySample,
} from '../src/telemetry/index.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

function sampleOf(cpuPercent: number): TelemetrySample {
  return { cpuPercent, memoryUsedBytes: 1 * GIB, memoryTotalBytes: 8 * GIB, gpus: [] };
}

/** A scriptable systeminformation stand-in; every method counts its calls. */
function fakeSource(init: {
  cpu?: () => number;
  mem?: () => { total: number; available: number; active: number };
  controllers?: () => GraphicsControllerInfo[];
}) {
  const calls = { cpuTimes: 0, mem: 0, graphics: 0 };
  // Tick counters that advance 1000 ticks per sample, `cpu` percent of them busy.
  const ticks = { busy: 0, total: 0 };
  const source: SystemInfoSource = {
    cpuTimes() {
      calls.cpuTimes += 1;
      const busy = ticks.busy + (init.cpu ?? (() => 10))() * 10;
      const total = ticks.total + 1000;
      if (Number.isFinite(busy)) Object.assign(ticks, { busy, total });
      return [{ times: { user: busy, nice: 0, sys: 0, irq: 0, idle: total - busy } }];
    },
    async mem() {
      calls.mem += 1;
      return (init.mem ?? (() => ({ total: 16 * GIB, available: 12 * GIB, active: 3 * GIB })))();
    },
    async graphics() {
      calls.graphics += 1;
      return { controllers: (init.controllers ?? (() => []))() };
    },
  };
  return { source, calls };
}

describe('SystemTelemetryProvider on this machine', () => {
  it('reports real capabilities and a sane sample', async () => {
    const provider = new SystemTelemetryProvider();
    const caps = await provider.capabilities();
    expect(caps.cpuCores).toBeGreaterThan(0);
    expect(Number.isInteger(caps.cpuCores)).toBe(true);
    expect(caps.memoryTotalBytes).toBeGreaterThan(0);
    // No GPU on the development machine: an empty list, not an error.
    expect(Array.isArray(caps.gpus)).toBe(true);
    for (const gpu of caps.gpus) {
      expect(gpu.model.length).toBeGreaterThan(0);
      expect(gpu.vramTotalBytes).toBeGreaterThanOrEqual(0);
    }

    const sample = await provider.sample();
    expect(sample.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(sample.cpuPercent).toBeLessThanOrEqual(100);
    expect(sample.memoryTotalBytes).toBe(caps.memoryTotalBytes);
    expect(sample.memoryUsedBytes).toBeGreaterThan(0);
    expect(sample.memoryUsedBytes).toBeLessThanOrEqual(sample.memoryTotalBytes);
    expect(Array.isArray(sample.gpus)).toBe(true);
    expect(sample.gpus.length).toBe(caps.gpus.length);
  });
});

describe('SystemTelemetryProvider with a faked systeminformation', () => {
  const nvidia: GraphicsControllerInfo = {
    vendor: 'NVIDIA Corporation',
    model: 'AD102 [GeForce RTX 4090]',
    name: 'NVIDIA GeForce RTX 4090',
    memoryTotal: 24_564,
    memoryUsed: 1_024,
    utilizationGpu: 37,
  };
  const intel: GraphicsControllerInfo = { vendor: 'Intel Corporation', model: 'UHD Graphics 770' };
  const bmc: GraphicsControllerInfo = { vendor: 'ASPEED Technology, Inc.', model: 'ASPEED Graphics Family' };

  it('keeps NVIDIA controllers only and converts MiB to bytes', async () => {
    const { source } = fakeSource({ controllers: () => [intel, nvidia, bmc, { vendorId: '0x10DE', model: 'GA100' }] });
    const provider = new SystemTelemetryProvider({ source, cpuCores: () => 24 });

    const caps = await provider.capabilities();
    expect(caps).toEqual({
      cpuCores: 24,
      memoryTotalBytes: 16 * GIB,
      gpus: [
        { index: 0, model: 'NVIDIA GeForce RTX 4090', vramTotalBytes: 24_564 * MIB },
        // NVIDIA by PCI vendor id, no nvidia-smi figures: VRAM unknown, reported as 0.
        { index: 1, model: 'GA100', vramTotalBytes: 0 },
      ],
    });

    const sample = await provider.sample();
    expect(sample).toEqual({
      cpuPercent: 10,
      // total − available, not `active`
      memoryUsedBytes: 4 * GIB,
      memoryTotalBytes: 16 * GIB,
      gpus: [
        { index: 0, utilizationPercent: 37, vramUsedBytes: 1_024 * MIB, vramTotalBytes: 24_564 * MIB },
        { index: 1, utilizationPercent: 0, vramUsedBytes: 0, vramTotalBytes: 0 },
      ],
    });
  });

  it('refreshes GPU figures at most every gpuRefreshMs', async () => {
    let used = 1_000;
    const { source, calls } = fakeSource({ controllers: () => [{ ...nvidia, memoryUsed: used }] });
    let now = 0;
    const provider = new SystemTelemetryProvider({ source, gpuRefreshMs: 5_000, now: () => now });

    expect((await provider.sample()).gpus[0]?.vramUsedBytes).toBe(1_000 * MIB);
    used = 2_000;
    now = 4_999;
    expect((await provider.sample()).gpus[0]?.vramUsedBytes).toBe(1_000 * MIB);
    expect(calls.graphics).toBe(1);
    expect(calls.cpuTimes).toBe(2);

    now = 5_000;
    expect((await provider.sample()).gpus[0]?.vramUsedBytes).toBe(2_000 * MIB);
    expect(calls.graphics).toBe(2);
  });

  it('never asks for GPUs again once discovery found none', async () => {
    const { source, calls } = fakeSource({ controllers: () => [intel] });
    let now = 0;
    const provider = new SystemTelemetryProvider({ source, gpuRefreshMs: 1_000, now: () => now });
    expect((await provider.capabilities()).gpus).toEqual([]);
    for (let i = 0; i < 5; i++) {
      now += 10_000;
      expect((await provider.sample()).gpus).toEqual([]);
    }
    expect(calls.graphics).toBe(1);
  });

  it('degrades to the last good figures, or zeros, and never throws', async () => {
    let failing = false;
    const boom = () => {
      if (failing) throw new Error('probe failed');
    };
    let now = 0;
    const { source } = fakeSource({
      cpu: () => (boom(), 42),
      mem: () => (boom(), { total: 16 * GIB, available: 10 * GIB, active: 1 }),
      controllers: () => (boom(), [nvidia]),
    });
    const provider = new SystemTelemetryProvider({ source, gpuRefreshMs: 1, now: () => now });
    const good = await provider.sample();

    failing = true;
    now = 100;
    await expect(provider.sample()).resolves.toEqual(good);

    const broken: SystemInfoSource = {
      cpuTimes: () => {
        throw new Error('no /proc');
      },
      mem: () => {
        throw new Error('sync throw');
      },
      graphics: () => Promise.reject(new Error('lspci missing')),
    };
    const fresh = new SystemTelemetryProvider({ source: broken });
    await expect(fresh.sample()).resolves.toEqual({ cpuPercent: 0, memoryUsedBytes: 0, memoryTotalBytes: 0, gpus: [] });
    const caps = await fresh.capabilities();
    expect(caps.memoryTotalBytes).toBeGreaterThan(0); // falls back to os.totalmem()
    expect(caps.gpus).toEqual([]);
  });

  it('clamps CPU to 0..100 and ignores NaN', async () => {
    let cpu = 130;
    const { source } = fakeSource({ cpu: () => cpu });
    const provider = new SystemTelemetryProvider({ source });
    expect((await provider.sample()).cpuPercent).toBe(100);
    cpu = Number.NaN;
    expect((await provider.sample()).cpuPercent).toBe(100);
    cpu = -3;
    expect((await provider.sample()).cpuPercent).toBe(0);
  });
});

describe('StaticTelemetryProvider', () => {
  it('returns exactly what it was given and changes live with set()', async () => {
    const caps = { cpuCores: 16, memoryTotalBytes: 64 * GIB, gpus: [{ index: 0, model: 'H100', vramTotalBytes: 80 * GIB }] };
    const initial: TelemetrySample = {
      cpuPercent: 5,
      memoryUsedBytes: 2 * GIB,
      memoryTotalBytes: 64 * GIB,
      gpus: [{ index: 0, utilizationPercent: 0, vramUsedBytes: 0, vramTotalBytes: 80 * GIB }],
    };
    const provider = new StaticTelemetryProvider(caps, initial);
    expect(await provider.capabilities()).toEqual(caps);
    expect(await provider.sample()).toEqual(initial);

    provider.set({ cpuPercent: 90 });
    expect(await provider.sample()).toEqual({ ...initial, cpuPercent: 90 });

    const gpus = [{ index: 0, utilizationPercent: 99, vramUsedBytes: 70 * GIB, vramTotalBytes: 80 * GIB }];
    provider.set({ gpus });
    expect(await provider.sample()).toEqual({ ...initial, cpuPercent: 90, gpus });

    // Mutating what went in or came out does not leak into the provider.
    gpus[0]!.utilizationPercent = 1;
    initial.cpuPercent = 0;
    const out = await provider.sample();
    out.gpus[0]!.vramUsedBytes = 0;
    expect(await provider.sample()).toEqual({ ...initial, cpuPercent: 90, gpus: [{ index: 0, utilizationPercent: 99, vramUsedBytes: 70 * GIB, vramTotalBytes: 80 * GIB }] });
  });
});

/** A provider whose samples finish only when the test says so. */
class ManualProvider implements TelemetryProvider {
  started = 0;
  active = 0;
  maxActive = 0;
  private pending: Array<{ resolve: (s: TelemetrySample) => void; reject: (e: Error) => void }> = [];

  async capabilities() {
    return { cpuCores: 1, memoryTotalBytes: GIB, gpus: [] };
  }

  sample(): Promise<TelemetrySample> {
    this.started += 1;
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    return new Promise<TelemetrySample>((resolve, reject) => this.pending.push({ resolve, reject })).finally(() => {
      this.active -= 1;
    });
  }

  finish(cpuPercent: number): void {
    this.pending.shift()?.resolve(sampleOf(cpuPercent));
  }

  fail(): void {
    this.pending.shift()?.reject(new Error('sensor gone'));
  }
}

describe('TelemetrySampler', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('samples immediately and then once per interval', async () => {
    vi.useFakeTimers();
    let cpu = 0;
    const provider: TelemetryProvider = {
      capabilities: async () => ({ cpuCores: 1, memoryTotalBytes: GIB, gpus: [] }),
      sample: async () => sampleOf(cpu++),
    };
    const sampler = new TelemetrySampler(provider, { intervalMs: 1_000 });
    expect(sampler.latest()).toBeUndefined();

    sampler.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(sampler.latest()?.cpuPercent).toBe(0);

    await vi.advanceTimersByTimeAsync(999);
    expect(sampler.stats().samples).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sampler.latest()?.cpuPercent).toBe(1);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(sampler.latest()?.cpuPercent).toBe(4);
    expect(sampler.stats().samples).toBe(5);
    sampler.stop();
  });

  it('defaults to one sample per second', async () => {
    vi.useFakeTimers();
    const provider = new StaticTelemetryProvider({ cpuCores: 1, memoryTotalBytes: GIB, gpus: [] }, sampleOf(1));
    const spy = vi.spyOn(provider, 'sample');
    const sampler = new TelemetrySampler(provider);
    sampler.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(spy).toHaveBeenCalledTimes(11);
    sampler.stop();
  });

  it('never runs two samples at once: a tick during a slow sample is skipped', async () => {
    vi.useFakeTimers();
    const provider = new ManualProvider();
    const sampler = new TelemetrySampler(provider, { intervalMs: 100 });
    sampler.start();
    await vi.advanceTimersByTimeAsync(350); // ticks at 100, 200, 300 find the first sample running
    expect(provider.started).toBe(1);
    expect(sampler.stats().skipped).toBe(3);

    provider.finish(50);
    await vi.advanceTimersByTimeAsync(0);
    expect(sampler.latest()?.cpuPercent).toBe(50);

    await vi.advanceTimersByTimeAsync(50); // tick at 400 starts the next one
    expect(provider.started).toBe(2);
    provider.finish(60);
    await vi.advanceTimersByTimeAsync(100);
    expect(sampler.latest()?.cpuPercent).toBe(60);
    expect(provider.maxActive).toBe(1);
    sampler.stop();
  });

  it('stop() stops sampling, and start() resumes', async () => {
    vi.useFakeTimers();
    const provider = new StaticTelemetryProvider({ cpuCores: 1, memoryTotalBytes: GIB, gpus: [] }, sampleOf(1));
    const spy = vi.spyOn(provider, 'sample');
    const sampler = new TelemetrySampler(provider, { intervalMs: 100 });
    sampler.start();
    sampler.start(); // idempotent: no second timer
    await vi.advanceTimersByTimeAsync(250);
    expect(spy).toHaveBeenCalledTimes(3);
    expect(sampler.isRunning()).toBe(true);

    sampler.stop();
    expect(sampler.isRunning()).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(spy).toHaveBeenCalledTimes(3);
    expect(sampler.latest()?.cpuPercent).toBe(1);

    sampler.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(spy).toHaveBeenCalledTimes(4);
    sampler.stop();
  });

  it('swallows and counts errors, keeping the last good sample', async () => {
    vi.useFakeTimers();
    const provider = new ManualProvider();
    const seen: unknown[] = [];
    const sampler = new TelemetrySampler(provider, { intervalMs: 100, onError: (e) => seen.push(e) });
    sampler.start();
    provider.finish(7);
    await vi.advanceTimersByTimeAsync(100);
    provider.fail();
    await vi.advanceTimersByTimeAsync(100);
    provider.fail();
    await vi.advanceTimersByTimeAsync(0);

    expect(sampler.latest()?.cpuPercent).toBe(7);
    expect(sampler.stats()).toMatchObject({ samples: 1, errors: 2 });
    expect(seen).toHaveLength(2);
    expect((sampler.stats().lastError as Error).message).toBe('sensor gone');
    sampler.stop();
  });

  it('survives a provider that throws synchronously', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const provider: TelemetryProvider = {
      capabilities: async () => ({ cpuCores: 1, memoryTotalBytes: GIB, gpus: [] }),
      sample: () => {
        calls += 1;
        if (calls === 1) throw new Error('sync');
        return Promise.resolve(sampleOf(3));
      },
    };
    const sampler = new TelemetrySampler(provider, { intervalMs: 100 });
    sampler.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(sampler.stats()).toMatchObject({ samples: 1, errors: 1, skipped: 0 });
    expect(sampler.latest()?.cpuPercent).toBe(3);
    sampler.stop();
  });

  it('uses an unref’ed timer so it never keeps the process alive', () => {
    const spy = vi.spyOn(globalThis, 'setInterval');
    const sampler = new TelemetrySampler(new ManualProvider(), { intervalMs: 60_000 });
    sampler.start();
    const timer = spy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    sampler.stop();
  });

  it('runOnce() joins a running sample instead of starting another', async () => {
    const provider = new ManualProvider();
    const sampler = new TelemetrySampler(provider);
    const a = sampler.runOnce();
    const b = sampler.runOnce();
    expect(provider.started).toBe(1);
    provider.finish(12);
    await Promise.all([a, b]);
    expect(sampler.latest()?.cpuPercent).toBe(12);
  });

  it('rejects a non-positive interval', () => {
    expect(() => new TelemetrySampler(new ManualProvider(), { intervalMs: 0 })).toThrow(RangeError);
  });
});
