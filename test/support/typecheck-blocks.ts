// Type-checks the ```ts blocks of markdown pages as a user who pastes them would compile
// them: strict, experimentalDecorators and emitDecoratorMetadata, NodeNext modules, with
// this repository's TypeScript and the packages' sources standing in for the installed
// packages. Errors come back at their line in the markdown.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeBlocks, isTypeScript, type CodeBlock } from './markdown.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The repository's tsc (its package exports hide bin/, hence via package.json). */
export const TSC = join(dirname(createRequire(join(ROOT, 'package.json')).resolve('typescript/package.json')), 'bin', 'tsc');

/** Compiler options of a user's project, as the README's quick start sets them up. */
export const USER_COMPILER_OPTIONS = {
  target: 'ES2022',
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  lib: ['ES2023'],
  types: ['node'],
  strict: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
} as const;

export interface Page {
  /** Where the page is, for messages (e.g. `docs/routing.md`). */
  readonly path: string;
  readonly markdown: string;
}

export interface BlockError {
  /** `page:line` in the markdown. */
  readonly at: string;
  readonly message: string;
}

/** Each package's source entry, keyed by its name: `@easyremote/<folder>`. */
function packageSources(): Record<string, string> {
  const packages = join(ROOT, 'packages');
  return Object.fromEntries(
    readdirSync(packages)
      .filter((dir) => existsSync(join(packages, dir, 'src', 'index.ts')))
      .map((dir) => [`@easyremote/${dir}`, join(packages, dir, 'src', 'index.ts')]),
  );
}

/** The ```ts blocks of `pages` that are to compile (those without a no-typecheck marker). */
export function checkedBlocks(page: Page): CodeBlock[] {
  return codeBlocks(page.markdown).filter((b) => isTypeScript(b) && b.skip === undefined);
}

export function typecheckBlocks(pages: readonly Page[]): BlockError[] {
  // Inside the repository, so that @types/node and the packages' own dependencies resolve
  // as they do for the packages; node_modules keeps it out of git and out of vitest's way.
  const cacheDir = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cacheDir, { recursive: true });
  const dir = mkdtempSync(join(cacheDir, 'markdown-blocks-'));
  try {
    const origin = new Map<string, { page: string; firstLine: number }>();
    const problems: BlockError[] = [];
    for (const page of pages) {
      const folder = page.path.replace(/\.md$/, '').replace(/[/\\]/g, '-');
      mkdirSync(join(dir, folder));
      for (const block of checkedBlocks(page)) {
        const name = block.name ?? `block-line-${block.line}.ts`;
        const file = join(folder, name);
        if (origin.has(file)) problems.push({ at: `${page.path}:${block.line}`, message: `a second block named ${name} on this page` });
        origin.set(file, { page: page.path, firstLine: block.line });
        writeFileSync(join(dir, file), block.code);
      }
    }
    if (origin.size === 0) return problems;
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    const paths = Object.fromEntries(Object.entries(packageSources()).map(([name, src]) => [name, [relative(dir, src)]]));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          ...USER_COMPILER_OPTIONS,
          noEmit: true,
          // Every block is a module of its own, even one without imports, so two blocks
          // declaring `const gateway` do not collide.
          moduleDetection: 'force',
          paths,
        },
        include: ['**/*.ts'],
      }),
    );
    const run = spawnSync(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    if (run.error) throw run.error;
    const output = `${run.stdout}${run.stderr}`;
    for (const line of output.split('\n')) {
      const m = /^(.+?)\((\d+),(\d+)\): (error TS\d+: .*)$/.exec(line.trim());
      if (m === null) continue;
      const where = origin.get(m[1]!.replace(/\//g, '/'));
      problems.push(where ? { at: `${where.page}:${where.firstLine + Number(m[2]) - 1}`, message: m[4]! } : { at: m[1]!, message: m[4]! });
    }
    if (run.status !== 0 && problems.length === 0) problems.push({ at: '(tsc)', message: output.trim() || `tsc exited with ${run.status}` });
    const byPlace = (e: BlockError) => e.at.replace(/:(\d+)$/, (_, n: string) => `:${n.padStart(6, '0')}`);
    return problems.sort((a, b) => byPlace(a).localeCompare(byPlace(b)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
