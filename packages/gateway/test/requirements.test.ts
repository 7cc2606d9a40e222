import { InvalidArgument } from '@easyremote/protocol';
import { describe, expect, it } from 'vitest';
import { describeExclusion, filterCandidates, meetsRequirement, parseRequirements } from '../src/routing/requirements.js';
import { candidate, GB, GiB } from './strategies/fixtures.js';

const one = (key: string, value: string) => parseRequirements({ [key]: value })[0]!;

describe('parseRequirements', () => {
  it('parses sizes with decimal and binary units, any case, with or without spaces', () => {
    expect(one('gpuMemory', '>=16GB')).toMatchObject({ kind: 'numeric', key: 'gpuMemory', op: '>=', value: 16e9, source: 'gpuMemory >=16GB' });
    expect(one('gpu_memory', '>= 16 GiB')).toMatchObject({ key: 'gpuMemory', op: '>=', value: 16 * GiB });
    expect(one('memory', '<2TB')).toMatchObject({ op: '<', value: 2e12 });
    expect(one('memory', '<=512mib')).toMatchObject({ op: '<=', value: 512 * 1024 ** 2 });
    expect(one('available_memory', '>1.5kB')).toMatchObject({ key: 'availableMemory', op: '>', value: 1500 });
    expect(one('memory', '4096')).toMatchObject({ op: '==', value: 4096 }); // bare number = bytes
    expect(one('memory', '== 8 b')).toMatchObject({ op: '==', value: 8 });
  });

  it('parses counts, a bare value meaning ==', () => {
    expect(one('cpuCores', '==8')).toMatchObject({ key: 'cpuCores', op: '==', value: 8 });
    expect(one('cpu_cores', '8')).toMatchObject({ op: '==', value: 8 });
    expect(one('gpu_count', '> 1')).toMatchObject({ key: 'gpuCount', op: '>', value: 1 });
  });

  it('parses gpuModel and labels as strings', () => {
    expect(one('gpu_model', 'A100')).toMatchObject({ kind: 'gpuModel', value: 'A100' });
    expect(one('label.location', 'eu')).toMatchObject({ kind: 'label', label: 'location', value: 'eu' });
    expect(one('label.tier', '==gold')).toMatchObject({ value: 'gold' });
  });

  it('refuses malformed text with InvalidArgument quoting the key and the text', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['gpuMemory', '>=16XB', /"gpuMemory".*">=16XB".*unknown size unit "XB"/],
      ['gpuMemory', 'lots', /"gpuMemory".*"lots"/],
      ['cpuCores', '>=8GB', /"cpuCores".*">=8GB".*takes no unit/],
      ['cpuCores', '=>8', /"cpuCores".*"=>8"/],
      ['memory', '-1GB', /"memory".*"-1GB"/],
      ['gpuModel', '>=A100', /"gpuModel".*">=A100".*not a comparison/],
      ['label.location', '>eu', /"label.location".*">eu".*equality/],
      ['label.', 'eu', /needs a name/],
    ];
    for (const [key, text, message] of cases) {
      expect(() => parseRequirements({ [key]: text }), `${key}: ${text}`).toThrow(InvalidArgument);
      expect(() => parseRequirements({ [key]: text })).toThrow(message);
    }
  });

  it('refuses unknown keys, naming the key', () => {
    expect(() => parseRequirements({ gpu_memroy: '>=16GB' })).toThrow(InvalidArgument);
    expect(() => parseRequirements({ gpu_memroy: '>=16GB' })).toThrow(/unknown requirement key "gpu_memroy"/);
  });
});

describe('meetsRequirement and filterCandidates', () => {
  const big = candidate({
    nodeId: 'big',
    capabilities: {
      cpuCores: 32,
      memoryTotalBytes: 256 * GB,
      gpus: [
        { index: 0, model: 'NVIDIA A100-SXM4-40GB', vramTotalBytes: 40 * GiB },
        { index: 1, model: 'NVIDIA A100-SXM4-40GB', vramTotalBytes: 40 * GiB },
      ],
      labels: { location: 'eu' },
    },
    telemetry: { memoryUsedBytes: 250 * GB, memoryTotalBytes: 256 * GB },
  });
  const small = candidate({
    nodeId: 'small',
    capabilities: { cpuCores: 4, memoryTotalBytes: 16 * GB, gpus: [{ index: 0, model: 'GeForce RTX 3060', vramTotalBytes: 12 * GiB }] },
    telemetry: null,
  });
  const cpuOnly = candidate({ nodeId: 'cpu', capabilities: { cpuCores: 16, labels: { location: 'us' } } });

  it('matches each key against capabilities and telemetry', () => {
    const meets = (c: typeof big, key: string, value: string) => meetsRequirement(c, one(key, value));
    expect(meets(big, 'gpuMemory', '>=16GB')).toBe(true);
    expect(meets(small, 'gpuMemory', '>=16GB')).toBe(false);
    expect(meets(small, 'gpuMemory', '>=12GiB')).toBe(true);
    expect(meets(cpuOnly, 'gpuMemory', '<100GB')).toBe(false); // no card at all
    expect(meets(big, 'gpuCount', '>=2')).toBe(true);
    expect(meets(cpuOnly, 'gpuCount', '0')).toBe(true);
    expect(meets(big, 'gpuModel', 'a100')).toBe(true);
    expect(meets(small, 'gpuModel', 'a100')).toBe(false);
    expect(meets(small, 'cpuCores', '>=8')).toBe(false);
    expect(meets(big, 'memory', '>=200GB')).toBe(true);
    // 256 GB total but 250 GB used: 6 GB available.
    expect(meets(big, 'availableMemory', '>=8GB')).toBe(false);
    // Without telemetry, available memory is the total.
    expect(meets(small, 'availableMemory', '>=8GB')).toBe(true);
    expect(meets(big, 'label.location', 'eu')).toBe(true);
    expect(meets(cpuOnly, 'label.location', 'eu')).toBe(false);
  });

  it('attributes each excluded node to the first requirement it fails', () => {
    const parsed = parseRequirements({ gpu_memory: '>=16GB', cpu_cores: '>=8' });
    const { kept, excluded } = filterCandidates([big, small, cpuOnly], parsed);
    expect(kept.map((c) => c.nodeId)).toEqual(['big']);
    // small fails both but counts once, against gpuMemory; cpuOnly fails gpuMemory.
    expect(excluded).toEqual([{ requirement: 'gpuMemory >=16GB', count: 2 }]);

    const reordered = filterCandidates([big, small, cpuOnly], parseRequirements({ cpu_cores: '>=8', gpu_memory: '>=16GB' }));
    expect(reordered.excluded).toEqual([
      { requirement: 'cpuCores >=8', count: 1 },
      { requirement: 'gpuMemory >=16GB', count: 1 },
    ]);
  });

  it('describes exclusions in one sentence', () => {
    expect(
      describeExclusion(
        [
          { requirement: 'gpuMemory >=16GB', count: 2 },
          { requirement: 'cpuCores >=8', count: 1 },
        ],
        3,
      ),
    ).toBe('gpuMemory >=16GB excluded 2 of 3 nodes; cpuCores >=8 excluded 1 of 3 nodes');
    expect(describeExclusion([{ requirement: 'label.location eu', count: 1 }], 1)).toBe('label.location eu excluded 1 of 1 node');
    expect(describeExclusion([], 4)).toBe('no requirement excluded any of 4 nodes');
  });

  it('keeps everything when there are no requirements', () => {
    expect(filterCandidates([big, small], [])).toEqual({ kept: [big, small], excluded: [] });
  });
});
