// Self time per function in a .cpuprofile (Chrome DevTools format), grouped by where the
// code lives: this project, grpc-js, other packages, Node's own JavaScript, V8 (GC, native).
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export type CodeKind = 'this project' | 'grpc-js' | 'other package' | 'node internals' | 'native binding' | 'GC' | 'V8 (program)' | 'idle';

export interface SelfTime {
  functionName: string;
  location: string;
  kind: CodeKind;
  selfMs: number;
  /** Share of the profile's busy time (everything but idle). */
  share: number;
}

export interface ProfileSummary {
  wallMs: number;
  busyMs: number;
  /** Every function, heaviest first. */
  all: SelfTime[];
  /** The `topN` heaviest functions. */
  top: SelfTime[];
  /** The `topN` heaviest functions of this project's own code. */
  topOwn: SelfTime[];
  byKind: Array<{ kind: CodeKind; selfMs: number; share: number }>;
}

function kindOf(frame: CallFrame): CodeKind {
  if (frame.functionName === '(idle)') return 'idle';
  if (frame.functionName === '(garbage collector)') return 'GC';
  if (frame.url.startsWith('node:')) return 'node internals';
  if (frame.url.includes('@grpc/grpc-js') || frame.url.includes('@grpc+grpc-js')) return 'grpc-js';
  if (frame.url.includes('/node_modules/')) return 'other package';
  if (frame.url.startsWith('file:')) return 'this project';
  // Named frames without a script are C++ functions called from JavaScript (Node's
  // bindings: http2 session writes, timers; native addons such as better-sqlite3).
  if (frame.functionName && !frame.functionName.startsWith('(')) return 'native binding';
  return 'V8 (program)';
}

function locationOf(frame: CallFrame, root: string): string {
  if (!frame.url) return '';
  let path = frame.url;
  if (path.startsWith('file:')) {
    path = relative(root, fileURLToPath(path));
    const nm = path.lastIndexOf('node_modules/');
    if (nm >= 0) path = path.slice(nm + 'node_modules/'.length).replace(/^\.pnpm\/[^/]+\/node_modules\//, '');
  }
  return `${path}:${frame.lineNumber + 1}`;
}

/** Sums self time per (function, location); `root` shortens file paths. */
export function summarizeProfile(file: string, root: string, topN = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time from sample i-1 to sample i; charge it to sample i.
  for (let i = 0; i < profile.samples.length; i++) selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
  const byFunction = new Map<string, { functionName: string; location: string; kind: CodeKind; us: number }>();
  const byKind = new Map<CodeKind, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = frames.get(id)!;
    const kind = kindOf(frame);
    totalUs += us;
    if (kind === 'idle') {
      idleUs += us;
      continue;
    }
    const location = locationOf(frame, root);
    const key = `${frame.functionName}\u0000${location}`;
    const entry = byFunction.get(key) ?? { functionName: frame.functionName || '(anonymous)', location, kind, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
    byKind.set(kind, (byKind.get(kind) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const all = [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .map((e) => ({ functionName: e.functionName, location: e.location, kind: e.kind, selfMs: e.us / 1000, share: e.us / busyUs }));
  return {
    wallMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    all,
    top: all.slice(0, topN),
    topOwn: all.filter((e) => e.kind === 'this project').slice(0, topN),
    byKind: [...byKind]
      .sort((a, b) => b[1] - a[1])
      .map(([kind, us]) => ({ kind, selfMs: us / 1000, share: us / busyUs })),
  };
}
