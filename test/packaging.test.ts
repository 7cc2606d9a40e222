// The packages as a user gets them: packed with `pnpm pack` (which runs each package's
// prepack build and turns workspace:* into versions), installed with npm into a fresh
// project outside the repository (third-party dependencies from the registry, through
// npm's cache; better-sqlite3 built by its own install script), the README's quick start
// compiled there with the README's tsconfig by the repository's tsc, and run: a gateway
// process, a node process and a client process making real calls.
//
// One npm install of everything, started at the lowest CPU priority: compiling
// better-sqlite3 takes a minute or two and must not starve the timing-sensitive tests
// that vitest runs beside this one.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './support/cluster.js';
import { codeBlocks } from './support/markdown.js';
import { ROOT, TSC } from './support/typecheck-blocks.js';

/** Workspace folders packed and installed, dependencies first. A new package is one more line. */
const PACKAGES = [
  'protocol',
  'node',
  'client',
  'gateway',
  'cli',
];

/** What the user installs beside the packages (the README's quick start: `npm install --save-dev typescript @types/node`, with the repository's tsc standing in for typescript). */
const USER_DEV_DEPENDENCIES = { '@types/node': '^20.19.0' };

/** The README's quick-start files, and the address in them that the test moves to a free port. */
const QUICK_START = ['tsconfig.json', 'gateway.ts', 'node.ts', 'client.ts'];
const README_ADDRESS = '127.0.0.1:50051';
const README_PORT = 'port: 50051';

const INSTALL_TIMEOUT_MS = 8 * 60_000;
const STEP_TIMEOUT_MS = 2 * 60_000;

interface Ran {
  readonly code: number | null;
  readonly output: string;
}

/** Runs a command to its end (or kills it at `timeoutMs`), collecting stdout and stderr. */
function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number; lowPriority?: boolean }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    // Set before npm gets to its install scripts, so the compiler processes inherit it.
    if (options.lowPriority && child.pid !== undefined) {
      try {
        setPriority(child.pid, osConstants.priority.PRIORITY_LOW);
      } catch {
        // not permitted here: the install only runs at normal priority
      }
    }
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n[killed after ${options.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The environment better-sqlite3's install script needs to compile, as scripts/setup.sh sets it up. */
function nativeBuildEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  // node-gyp finds Debian's Node.js headers here rather than downloading them.
  if (env.npm_config_nodedir === undefined && existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  return env;
}

interface Running {
  readonly child: ChildProcess;
  readonly output: () => string;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
}

function start(cwd: string, script: string): Running {
  return startCommand(cwd, process.execPath, [script]);
}

function startCommand(cwd: string, command: string, args: readonly string[]): Running {
  const script = [command, ...args].join(' ');
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    output += d.toString();
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return {
    child,
    output: () => output,
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${script} printed no ${pattern} within ${timeoutMs} ms:\n${output}`)), timeoutMs);
        const check = () => {
          if (pattern.test(output)) {
            clearTimeout(timer);
            resolve();
          } else if (child.exitCode !== null) {
            clearTimeout(timer);
            reject(new Error(`${script} exited with ${child.exitCode} before printing ${pattern}:\n${output}`));
          }
        };
        waiters.push(check);
        child.on('exit', check);
        check();
      }),
  };
}

/** The package.json files under node_modules whose name is `name` (each is one installed copy). */
function copiesOf(nodeModules: string, name: string): string[] {
  const found: string[] = [];
  const visit = (dir: string, depth: number) => {
    if (depth > 8 || !existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === '.bin') continue;
      const names = entry.name.startsWith('@') ? readdirSync(join(dir, entry.name)).map((n) => `${entry.name}/${n}`) : [entry.name];
      for (const n of names) {
        const pkgDir = join(dir, n);
        if (n === name && existsSync(join(pkgDir, 'package.json'))) found.push(pkgDir);
        visit(join(pkgDir, 'node_modules'), depth + 1);
      }
    }
  };
  visit(nodeModules, 0);
  return found;
}

describe('the packages, packed and installed with npm in a fresh project', () => {
  let work: string;
  let app: string;
  const timings: Record<string, number> = {};
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'easyremote-packaging-'));
    const packs = join(work, 'packs');
    app = join(work, 'app');
    mkdirSync(packs);
    mkdirSync(app);

    let t = Date.now();
    for (const dir of PACKAGES) {
      const packed = await run('pnpm', ['pack', '--pack-destination', packs], { cwd: join(ROOT, 'packages', dir), timeoutMs: STEP_TIMEOUT_MS });
      if (packed.code !== 0) throw new Error(`pnpm pack in packages/${dir} failed:\n${packed.output}`);
    }
    timings.pack = Date.now() - t;

    const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz'));
    if (tarballs.length !== PACKAGES.length) throw new Error(`expected ${PACKAGES.length} tarballs, found ${tarballs.join(', ')}`);
    const dependencies = Object.fromEntries(
      PACKAGES.map((dir) => {
        const { name } = JSON.parse(readFileSync(join(ROOT, 'packages', dir, 'package.json'), 'utf8')) as { name: string };
        const tarball = tarballs.find((f) => f.startsWith(`${name.replace('@', '').replace('/', '-')}-`));
        if (tarball === undefined) throw new Error(`no tarball for ${name}`);
        return [name, `file:../packs/${tarball}`];
      }),
    );
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'easyremote-user', private: true, type: 'module', dependencies, devDependencies: USER_DEV_DEPENDENCIES }, null, 2));

    t = Date.now();
    const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app, env: nativeBuildEnv(), timeoutMs: INSTALL_TIMEOUT_MS, lowPriority: true });
    timings.install = Date.now() - t;
    if (installed.code !== 0) throw new Error(`npm install failed (exit ${installed.code}):\n${installed.output}`);

    for (const name of QUICK_START) {
      const block = codeBlocks(readme).find((b) => b.name === name);
      if (block === undefined) throw new Error(`README.md has no block that starts with // ${name}`);
      writeFileSync(join(app, name), block.code);
    }
  }, INSTALL_TIMEOUT_MS + 2 * STEP_TIMEOUT_MS);

  afterAll(() => {
    console.log(`packaging test: pack ${timings.pack ?? '-'} ms, npm install ${timings.install ?? '-'} ms, tsc ${timings.tsc ?? '-'} ms, run ${timings.run ?? '-'} ms`);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('ship their license, their build and real versions of each other', () => {
    for (const dir of PACKAGES) {
      const source = JSON.parse(readFileSync(join(ROOT, 'packages', dir, 'package.json'), 'utf8')) as { name: string; version: string };
      const installed = join(app, 'node_modules', source.name);
      const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<string, unknown> & { dependencies?: Record<string, string> };
      expect(manifest.license, source.name).toBe('MIT');
      expect(readFileSync(join(installed, 'LICENSE'), 'utf8'), source.name).toBe(readFileSync(join(ROOT, 'LICENSE'), 'utf8'));
      expect(manifest.engines, source.name).toEqual({ node: '>=20.19' });
      expect(manifest.repository, source.name).toMatchObject({ type: 'git', directory: `packages/${dir}` });
      expect(existsSync(join(installed, 'dist', 'index.js')) && existsSync(join(installed, 'dist', 'index.d.ts')), `${source.name} dist`).toBe(true);
      expect(existsSync(join(installed, 'tsconfig.tsbuildinfo')) || existsSync(join(installed, 'test')), `${source.name} ships build state or tests`).toBe(false);
      for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
        expect(range, `${source.name} → ${dep}`).not.toMatch(/^workspace:/);
        if (dep.startsWith('@easyremote/')) expect(range, `${source.name} → ${dep}`).toBe(source.version);
        if (dep === '@grpc/grpc-js') expect(range, `${source.name} → ${dep}`).toMatch(/^\^1\./);
      }
    }
  });

  it('install one copy of @grpc/grpc-js and of @easyremote/protocol', () => {
    const nodeModules = join(app, 'node_modules');
    expect(copiesOf(nodeModules, '@grpc/grpc-js')).toHaveLength(1);
    expect(copiesOf(nodeModules, '@easyremote/protocol')).toHaveLength(1);
  });

  it("compile the README's quick start with the README's tsconfig (strict, decorator metadata, library types checked)", async () => {
    const tsconfig = JSON.parse(readFileSync(join(app, 'tsconfig.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as { compilerOptions: Record<string, unknown> };
    // What this test is for: a user's strict project with decorator metadata, and our .d.ts
    // files checked too (a dev-only type in them is TS7016 here).
    expect(tsconfig.compilerOptions).toMatchObject({ strict: true, experimentalDecorators: true, emitDecoratorMetadata: true });
    expect(tsconfig.compilerOptions.skipLibCheck ?? false).toBe(false);
    const t = Date.now();
    const compiled = await run(process.execPath, [TSC, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: app, timeoutMs: STEP_TIMEOUT_MS });
    timings.tsc = Date.now() - t;
    expect(compiled.output).toBe('');
    expect(compiled.code).toBe(0);
    for (const file of ['gateway.js', 'node.js', 'client.js']) expect(existsSync(join(app, 'dist', file)), file).toBe(true);
  }, STEP_TIMEOUT_MS);

  it("run it: the gateway, the node and the client as processes, the client's calls answered", async () => {
    // The README's programs use 127.0.0.1:50051; a test takes a free port instead.
    const port = String(await freePort());
    for (const [file, from, to] of [
      ['gateway.js', README_PORT, `port: ${port}`],
      ['node.js', README_ADDRESS, `127.0.0.1:${port}`],
      ['client.js', README_ADDRESS, `127.0.0.1:${port}`],
    ] as const) {
      const path = join(app, 'dist', file);
      const js = readFileSync(path, 'utf8');
      expect(js, `${file} holds ${from}`).toContain(from);
      writeFileSync(path, js.replaceAll(from, to));
    }

    const t = Date.now();
    const processes: Running[] = [];
    try {
      const gateway = start(app, 'dist/gateway.js');
      processes.push(gateway);
      await gateway.waitFor(new RegExp(`gateway listening on 127\\.0\\.0\\.1:${port}`), 30_000);
      const node = start(app, 'dist/node.js');
      processes.push(node);
      await node.waitFor(/node gpu-1 serving/, 30_000);

      const client = await run(process.execPath, ['dist/client.js'], { cwd: app, timeoutMs: 60_000 });
      timings.run = Date.now() - t;
      expect(client.code, client.output).toBe(0);
      const lines = client.output.split('\n');
      expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^\{ loss: 0\.\d+ \}$/), expect.stringMatching(/^loss 0\.\d+$/), 'a', 'b', 'c', '1 epoch 3', '2 + 3 = 5', 'refused: epochs must be at least 1, got 0']));
      // Its call history, opened at start through the better-sqlite3 that npm built here.
      expect(existsSync(join(app, 'easyremote-metrics.db'))).toBe(true);

      // The installed command, against the same gateway and node.
      const help = await run('npx', ['--no-install', 'easyremote', 'gateway', '--help'], { cwd: app, timeoutMs: 60_000 });
      expect(help.code, help.output).toBe(0);
      expect(help.output).toMatch(/Usage: easyremote gateway/);
      const called = await run('npx', ['--no-install', 'easyremote', 'call', 'add', '[2, 3]', '--gateway', `127.0.0.1:${port}`], { cwd: app, timeoutMs: 60_000 });
      expect(called.code, called.output).toBe(0);
      // npx may warn first (about npm settings in the environment); the result is the last line.
      expect(called.output.trim().split('\n').at(-1)).toBe('5');
    } finally {
      for (const p of processes.reverse()) {
        p.child.kill('SIGKILL');
      }
    }
  }, STEP_TIMEOUT_MS);

  it("run the README's command-line quick start: easyremote gateway, node and call from the installed package", async () => {
    const worker = codeBlocks(readme).find((b) => b.name === 'worker.mjs');
    if (worker === undefined) throw new Error('README.md has no block that starts with // worker.mjs');
    writeFileSync(join(app, 'worker.mjs'), worker.code);
    const port = String(await freePort());
    const bin = join(app, 'node_modules', '.bin', 'easyremote');
    const processes: Running[] = [];
    try {
      const gateway = startCommand(app, bin, ['gateway', '--port', port, '--no-metrics']);
      processes.push(gateway);
      await gateway.waitFor(new RegExp(`gateway listening on 127\\.0\\.0\\.1:${port}`), 30_000);
      const node = startCommand(app, bin, ['node', './worker.mjs', '--id', 'worker-1', '--gateway', `127.0.0.1:${port}`]);
      processes.push(node);
      await node.waitFor(/node worker-1 serving/, 30_000);
      const added = await run(bin, ['call', 'add', '[2, 3]', '--gateway', `127.0.0.1:${port}`], { cwd: app, timeoutMs: 60_000 });
      expect(added.code, added.output).toBe(0);
      expect(added.output.trim()).toBe('5');
      const counted = await run(bin, ['call', 'count', '[3]', '--stream', '--gateway', `127.0.0.1:${port}`], { cwd: app, timeoutMs: 60_000 });
      expect(counted.code, counted.output).toBe(0);
      expect(counted.output.trim().split('\n')).toEqual(['1', '2', '3']);
    } finally {
      for (const p of processes.reverse()) p.child.kill('SIGKILL');
    }
  }, STEP_TIMEOUT_MS);
});

