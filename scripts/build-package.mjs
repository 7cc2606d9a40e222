// A package's `prepack`: a clean build of that package (run in its directory by pnpm pack
// or npm pack), so a tarball never carries output of a source file that no longer exists.
// The build info sits beside tsconfig.json, not in dist/, and `tsc -b` trusts it: with dist/
// gone and the build info kept it would emit nothing, so both go.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

rmSync('dist', { recursive: true, force: true });
rmSync('tsconfig.tsbuildinfo', { force: true });

// The workspace's TypeScript: a root devDependency, which pnpm links into no package, so it
// is resolved from the repository root (its exports hide bin/, hence via package.json).
const typescript = createRequire(new URL('../package.json', import.meta.url)).resolve('typescript/package.json');
const tsc = join(dirname(typescript), 'bin', 'tsc');
const run = spawnSync(process.execPath, [tsc, '-b'], { stdio: 'inherit' });
process.exit(run.status ?? 1);
