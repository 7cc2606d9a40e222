// CI check: the committed generated code must match what `pnpm generate` makes from proto/.
import { execFileSync } from 'node:child_process';

execFileSync('node', ['scripts/generate.mjs'], { stdio: 'inherit' });
try {
  execFileSync('git', ['diff', '--exit-code', '--stat', '--', 'packages/protocol/src/generated'], { stdio: 'inherit' });
  const untracked = execFileSync('git', ['ls-files', '--others', '--exclude-standard', 'packages/protocol/src/generated']).toString().trim();
  if (untracked) throw new Error(`untracked generated files:\n${untracked}`);
} catch (err) {
  console.error('generated code is out of date: run `pnpm generate` and commit the result');
  process.exit(1);
}
console.log('generated code is current');
