// Test support: a gateway on a free loopback port, in-process nodes, node processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Gateway, type GatewayOptions } from '@easyremote/gateway';
import { ComputeNode, type ComputeNodeOptions } from '@easyremote/node';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  // Tests that count who served what rely on round robin's fixed cycle; the shipped default
  // (smart_adaptive) is asserted in routing.test.ts and exercised where a test names it.
  const gw = new Gateway({ port: 0, metrics: { path: ':memory:' }, defaultStrategy: 'round_robin', ...options });
  await gw.start();
  return gw;
}

export async function startNode(gateway: string, setup: (node: ComputeNode) => void, options: Partial<ComputeNodeOptions> = {}): Promise<ComputeNode> {
  const node = new ComputeNode({ gateway, backoff: { initialMs: 50, maxMs: 500 }, ...options });
  setup(node);
  await node.start();
  return node;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Polls until `check` returns true or the time is up (then throws with `what`). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly nodeId: string;
  readonly lines: string[];
  /** Resolves with the first stdout line that matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts test/fixtures/<fixture>.ts as a separate node process (run through tsx). */
export async function spawnNode(fixture: string, gateway: string, nodeId: string, env: Record<string, string> = {}): Promise<NodeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`../fixtures/${fixture}.ts`, import.meta.url))], {
    cwd: ROOT,
    env: { ...process.env, GATEWAY: gateway, NODE_ID: nodeId, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (l: string) => void }> = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const proc: NodeProcess = {
    child,
    nodeId,
    lines,
    waitForLine(pattern, timeoutMs = 15_000) {
      const hit = lines.find((l) => pattern.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`node ${nodeId}: no line ${pattern} within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
        waiters.push({ pattern, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  await proc.waitForLine(/^ready$/);
  return proc;
}
