// Hard requirements a function declares about the node that may run it, e.g.
// { gpu_memory: '>=16GB', cpu_cores: '>=8', 'label.location': 'eu' }. Parsed once at
// registration (so a typo is refused there, not at call time) and applied by the router
// before any strategy runs.
//
// Sizes: decimal units are powers of 1000 and binary units powers of 1024, as the SI and
// IEC define them: KB/MB/GB/TB = 1000^1..4 bytes, KiB/MiB/GiB/TiB = 1024^1..4 bytes.
// Units are case-insensitive ('16gb' = '16GB'); 'B' or no unit means bytes. GPU vendors
// sell "16 GB" cards that hold 16 GiB, so a requirement of '>=16GB' (16.0e9 bytes) is met
// by such a card (17.18e9 bytes), while '>=16GiB' asks for the exact binary amount.
//
// Comparators: >=, >, <=, <, == (and = as a synonym); a bare value means ==.
import { InvalidArgument, quote } from '@easyremote/protocol';
import type { Candidate } from '../strategies/strategy.js';

export type Comparator = '>=' | '>' | '<=' | '<' | '==';

export type NumericRequirementKey = 'gpuMemory' | 'gpuCount' | 'cpuCores' | 'memory' | 'availableMemory';

export type ParsedRequirement =
  | {
      readonly kind: 'numeric';
      readonly key: NumericRequirementKey;
      readonly op: Comparator;
      /** Bytes for sizes, a count otherwise. */
      readonly value: number;
      /** Canonical key and the text as written, for messages: "gpuMemory >=16GB". */
      readonly source: string;
    }
  | { readonly kind: 'gpuModel'; readonly key: 'gpuModel'; readonly value: string; readonly source: string }
  | { readonly kind: 'label'; readonly key: string; readonly label: string; readonly value: string; readonly source: string };

export interface Exclusion {
  /** The requirement's `source`, e.g. "cpuCores >=8". */
  readonly requirement: string;
  /** Candidates whose first failed requirement was this one. */
  readonly count: number;
}

const SIZE_KEYS: ReadonlySet<string> = new Set(['gpuMemory', 'memory', 'availableMemory']);
const COUNT_KEYS: ReadonlySet<string> = new Set(['gpuCount', 'cpuCores']);
const KNOWN_KEYS = ['gpuMemory', 'gpuCount', 'gpuModel', 'cpuCores', 'memory', 'availableMemory', 'label.<name>'];
const LABEL_PREFIX = 'label.';

const UNIT_BYTES: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const COMPARISON = /^\s*(>=|<=|==|=|>|<)?\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$/i;
const LEADING_COMPARATOR = /^\s*(>=|<=|==|=|>|<)/;

/** Parses the declared requirements; throws InvalidArgument naming the bad key or text. */
export function parseRequirements(record: Readonly<Record<string, string>>): ParsedRequirement[] {
  return Object.entries(record).map(([rawKey, rawValue]) => parseOne(rawKey, rawValue));
}

function parseOne(rawKey: string, rawValue: unknown): ParsedRequirement {
  // JSON configuration may carry counts as numbers ({ cpu_cores: 8 }); anything else is a mistake.
  if (typeof rawValue === 'number' && Number.isFinite(rawValue)) rawValue = String(rawValue);
  if (typeof rawValue !== 'string') {
    throw invalid(rawKey, String(rawValue), 'the value must be a string');
  }
  const text = rawValue.trim();
  if (rawKey.startsWith(LABEL_PREFIX)) {
    const label = rawKey.slice(LABEL_PREFIX.length);
    if (label === '') throw invalid(rawKey, text, 'a label requirement needs a name, e.g. label.location');
    const m = LEADING_COMPARATOR.exec(text);
    if (m !== null && m[1] !== '==' && m[1] !== '=') {
      throw invalid(rawKey, text, 'labels can only be compared for equality');
    }
    const value = text.replace(LEADING_COMPARATOR, '').trim();
    if (value === '') throw invalid(rawKey, text, 'the label value is empty');
    return { kind: 'label', key: rawKey, label, value, source: `${rawKey} ${text}` };
  }

  const key = camelCase(rawKey);
  if (key === 'gpuModel') {
    if (LEADING_COMPARATOR.test(text)) throw invalid(rawKey, text, 'gpuModel takes a model name, not a comparison');
    if (text === '') throw invalid(rawKey, text, 'the model name is empty');
    return { kind: 'gpuModel', key, value: text, source: `${key} ${text}` };
  }
  if (!SIZE_KEYS.has(key) && !COUNT_KEYS.has(key)) {
    throw new InvalidArgument(
      `unknown requirement key ${quote(rawKey)} (value ${quote(text)}); known keys: ${KNOWN_KEYS.join(', ')} (snake_case accepted)`,
    );
  }
  const m = COMPARISON.exec(text);
  if (m === null) {
    throw invalid(rawKey, text, 'expected an optional comparator (>=, >, <=, <, ==) and a non-negative number');
  }
  const op: Comparator = m[1] === undefined || m[1] === '=' ? '==' : (m[1] as Comparator);
  const amount = Number(m[2]);
  const unit = (m[3] ?? '').toLowerCase();
  let value: number;
  if (SIZE_KEYS.has(key)) {
    const scale = UNIT_BYTES[unit];
    if (scale === undefined) {
      throw invalid(rawKey, text, `unknown size unit ${quote(m[3] ?? '')}; use B, KB, MB, GB, TB (1000-based) or KiB, MiB, GiB, TiB (1024-based)`);
    }
    value = amount * scale;
  } else {
    if (unit !== '') throw invalid(rawKey, text, `${key} is a count and takes no unit`);
    value = amount;
  }
  return { kind: 'numeric', key: key as NumericRequirementKey, op, value, source: `${key} ${text}` };
}

function camelCase(key: string): string {
  return key.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());
}

function invalid(key: string, text: string, why: string): InvalidArgument {
  return new InvalidArgument(`invalid requirement ${quote(key)}: ${quote(text)}: ${why}`);
}

function compare(actual: number, op: Comparator, wanted: number): boolean {
  switch (op) {
    case '>=':
      return actual >= wanted;
    case '>':
      return actual > wanted;
    case '<=':
      return actual <= wanted;
    case '<':
      return actual < wanted;
    case '==':
      return actual === wanted;
  }
}

/** Whether one candidate meets one requirement. */
export function meetsRequirement(c: Candidate, req: ParsedRequirement): boolean {
  const caps = c.capabilities;
  switch (req.kind) {
    case 'label':
      return caps.labels[req.label] === req.value;
    case 'gpuModel': {
      const wanted = req.value.toLowerCase();
      return caps.gpus.some((g) => g.model.toLowerCase().includes(wanted));
    }
    case 'numeric':
      switch (req.key) {
        case 'gpuMemory':
          // Per card: a function cannot spread one tensor over two 8 GB cards.
          return caps.gpus.some((g) => compare(g.vramTotalBytes, req.op, req.value));
        case 'gpuCount':
          return compare(caps.gpus.length, req.op, req.value);
        case 'cpuCores':
          return compare(caps.cpuCores, req.op, req.value);
        case 'memory':
          return compare(caps.memoryTotalBytes, req.op, req.value);
        case 'availableMemory':
          return compare(availableMemory(c), req.op, req.value);
      }
  }
}

/**
 * Whether a requirement reads figures that change while the node is connected (its
 * telemetry), rather than only what it declared when it registered: such a requirement
 * must be checked on every call, the others once per node.
 */
export function readsLiveFigures(req: ParsedRequirement): boolean {
  return req.kind === 'numeric' && req.key === 'availableMemory';
}

function availableMemory(c: Candidate): number {
  const t = c.telemetry;
  if (t === undefined) return c.capabilities.memoryTotalBytes;
  const total = t.memoryTotalBytes > 0 ? t.memoryTotalBytes : c.capabilities.memoryTotalBytes;
  return Math.max(0, total - t.memoryUsedBytes);
}

/**
 * Keeps the candidates meeting every requirement. Each excluded node is counted against
 * the first requirement it fails, so the counts add up to the number excluded and the
 * message points at one cause per node.
 */
export function filterCandidates(
  candidates: readonly Candidate[],
  parsed: readonly ParsedRequirement[],
): { kept: Candidate[]; excluded: Exclusion[] } {
  const kept: Candidate[] = [];
  const counts = new Array<number>(parsed.length).fill(0);
  for (const c of candidates) {
    const failed = parsed.findIndex((req) => !meetsRequirement(c, req));
    if (failed === -1) kept.push(c);
    else counts[failed]! += 1;
  }
  const excluded = parsed
    .map((req, i) => ({ requirement: req.source, count: counts[i]! }))
    .filter((e) => e.count > 0);
  return { kept, excluded };
}

/** "gpuMemory >=16GB excluded 2 of 3 nodes; cpuCores >=8 excluded 1 of 3 nodes". */
export function describeExclusion(excluded: readonly Exclusion[], total: number): string {
  const nodes = total === 1 ? 'node' : 'nodes';
  if (excluded.length === 0) return `no requirement excluded any of ${total} ${nodes}`;
  return excluded.map((e) => `${e.requirement} excluded ${e.count} of ${total} ${nodes}`).join('; ');
}
