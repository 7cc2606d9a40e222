// A package's `prepack` (run in the package's directory by pnpm pack or npm pack): build it,
// then make dist/ hold exactly the output of the current sources, so a tarball never
// carries a file whose source was renamed or deleted.
//
// It never empties dist/ first: other processes (tests that run the built packages) may be
// reading it while a pack runs, and an up-to-date build rewrites nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';

const OUTPUT_SUFFIXES = ['.js', '.js.map', '.d.ts', '.d.ts.map'];

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

const sources = new Set(filesUnder('src').filter((f) => f.endsWith('.ts')).map((f) => relative('src', f).slice(0, -'.ts'.length)));
const missing = () => [...sources].flatMap((s) => ['.js', '.d.ts'].map((ext) => join('dist', s + ext))).filter((f) => !existsSync(f));

// tsc -b trusts the build info beside tsconfig.json: with outputs deleted by hand it would
// report the project up to date and emit nothing.
if (missing().length > 0) rmSync('tsconfig.tsbuildinfo', { force: true });

// The workspace's TypeScript: a root devDependency, which pnpm links into no package, so it
// is resolved from the repository root (its exports hide bin/, hence via package.json).
const typescript = createRequire(new URL('../package.json', import.meta.url)).resolve('typescript/package.json');
const build = spawnSync(process.execPath, [join(dirname(typescript), 'bin', 'tsc'), '-b'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

for (const file of filesUnder('dist')) {
  const rel = relative('dist', file);
  const suffix = OUTPUT_SUFFIXES.find((s) => rel.endsWith(s));
  if (suffix === undefined || !sources.has(rel.slice(0, -suffix.length))) rmSync(file);
}
const pruneEmpty = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) pruneEmpty(join(dir, e.name));
  if (dir !== 'dist' && readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
};
pruneEmpty('dist');

const absent = missing();
if (absent.length > 0) {
  console.error(`build-package: the build left out ${absent.join(', ')}`);
  process.exit(1);
}
