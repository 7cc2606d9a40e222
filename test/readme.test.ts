// The README and docs/ work when pasted: every ```ts block compiles against the packages
// as a user's project compiles it (test/support/typecheck-blocks.ts), and every relative
// link and #anchor leads somewhere. Running the quick start is test/packaging.test.ts's job.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeBlocks, headingAnchors, isTypeScript, links } from './support/markdown.js';
import { checkedBlocks, ROOT, typecheckBlocks, type Page } from './support/typecheck-blocks.js';

const read = (path: string): Page => ({ path, markdown: readFileSync(join(ROOT, path), 'utf8') });
const mdIn = (dir: string) => readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.md')).map((f) => (dir === '.' ? f : `${dir}/${f}`));

/** Pages whose code is checked. */
const CODE_PAGES = ['README.md', ...mdIn('docs')].map(read);
/** Pages whose links are checked. */
const LINK_PAGES = [...mdIn('.'), ...mdIn('docs'), ...mdIn('proto')].map(read);

/** The ```ts blocks allowed to carry a no-typecheck marker, at most. */
const MAX_SKIPPED = 2;

describe('the TypeScript in README.md and docs/', () => {
  it('is checked: the quick start is there, named as the files it tells the reader to create', () => {
    const readme = CODE_PAGES[0]!;
    expect(checkedBlocks(readme).map((b) => b.name)).toEqual(expect.arrayContaining(['gateway.ts', 'node.ts', 'client.ts']));
    expect(codeBlocks(readme.markdown).some((b) => b.name === 'tsconfig.json')).toBe(true);
  });

  it('compiles, every block (strict, decorators, NodeNext) against the packages', { timeout: 120_000 }, () => {
    expect(typecheckBlocks(CODE_PAGES)).toEqual([]);
  });

  it('imports only what a user of the packages has: the packages, node: modules and its own files', () => {
    // Anything else resolves here through the workspace's devDependencies (reflect-metadata
    // did) but not in the reader's project.
    const foreign = CODE_PAGES.flatMap((p) =>
      checkedBlocks(p).flatMap((b) =>
        [...b.code.matchAll(/^\s*(?:import|export)\s(?:[^;'"]*?\sfrom\s)?\s*['"]([^'"]+)['"]/gm)]
          .map((m) => m[1]!)
          .filter((spec) => !/^(@easyremote\/|node:|\.\.?\/)/.test(spec))
          .map((spec) => `${p.path}:${b.line}: ${spec}`),
      ),
    );
    expect(foreign).toEqual([]);
  });

  it('skips a block only with a reason, and rarely', () => {
    const skipped = CODE_PAGES.flatMap((p) => codeBlocks(p.markdown).filter((b) => isTypeScript(b) && b.skip !== undefined).map((b) => ({ at: `${p.path}:${b.line}`, why: b.skip })));
    for (const s of skipped) expect(s.why, s.at).not.toBe('');
    expect(skipped.length).toBeLessThanOrEqual(MAX_SKIPPED);
  });

  it('would fail: an undefined name, a missing export and a wrong argument are reported at their lines', { timeout: 120_000 }, () => {
    const markdown = [
      '# Broken',
      '',
      '```ts',
      '// node.ts',
      "import { ComputeNode, NotExported } from '@easyremote/node';",
      "const node = new ComputeNode({ gateway: '127.0.0.1:50051' });",
      'await trainOneEpoch(node);',
      '```',
      '',
      '<!-- no-typecheck: shows the marker works -->',
      '```ts',
      'this is not TypeScript',
      '```',
      '',
      '```ts',
      "import { connect } from '@easyremote/client';",
      "connect(50051);",
      '```',
      '',
    ].join('\n');
    const errors = typecheckBlocks([{ path: 'broken.md', markdown }]);
    expect(errors.map((e) => e.at)).toEqual(['broken.md:5', 'broken.md:7', 'broken.md:17']);
    expect(errors[0]!.message).toMatch(/NotExported/);
    expect(errors[1]!.message).toMatch(/trainOneEpoch/);
  });
});

describe('links in the markdown', () => {
  it('lead to files that exist and to headings that exist', () => {
    const broken: string[] = [];
    for (const page of LINK_PAGES) {
      for (const { line, target } of links(page.markdown)) {
        if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path === '' ? page.path : normalize(join(dirname(page.path), decodeURIComponent(path)));
        if (!existsSync(join(ROOT, file))) {
          broken.push(`${page.path}:${line}: ${target} (no ${file})`);
          continue;
        }
        if (anchor !== undefined && file.endsWith('.md') && !headingAnchors(readFileSync(join(ROOT, file), 'utf8')).has(anchor)) {
          broken.push(`${page.path}:${line}: ${target} (no heading #${anchor} in ${file})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('are checked against GitHub’s anchors', () => {
    const anchors = headingAnchors('# Load-balancing strategies (`pnpm bench:strategies`)\n## Intake (every RPC)\n## Intake (every RPC)\n### `smart_adaptive`, the default\n');
    expect([...anchors]).toEqual(['load-balancing-strategies-pnpm-benchstrategies', 'intake-every-rpc', 'intake-every-rpc-1', 'smart_adaptive-the-default']);
  });
});
