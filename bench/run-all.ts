// Regenerates every section of BENCHMARKS.md, one benchmark after another (never in
// parallel: they would share the cores they measure).
import { execFileSync } from 'node:child_process';

for (const name of ['overhead', 'metrics', 'heartbeats', 'strategies', 'compression', 'seed-lookaside', 'scale-out']) {
  console.log(`\n== bench:${name}`);
  execFileSync('pnpm', ['run', '--silent', `bench:${name}`], { stdio: 'inherit' });
}
