// Test support: gateways in processes of their own (test/fixtures/gateway-process.ts), so
// that one can be killed outright (SIGKILL) and started again on the same port.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ROOT } from './cluster.js';

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly httpPort: number;
  readonly id: string;
  readonly address: string;
  /** Resolves once the process has exited. */
  readonly exited: Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

const FIXTURE = fileURLToPath(new URL('../fixtures/gateway-process.ts', import.meta.url));

/** Starts a gateway process on `port` (0: any free port) and waits for its `ready` line. */
export function spawnGateway(port: number, env: Record<string, string> = {}, readyTimeoutMs = 20_000): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { cwd: ROOT, env: { ...process.env, PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway process on port ${port} not ready within ${readyTimeoutMs} ms; stderr: ${stderr}`));
    }, readyTimeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^ready (\d+) (\d+) (\S+)$/m.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      const p = Number(m[1]);
      resolve({
        child,
        port: p,
        httpPort: Number(m[2]),
        id: m[3]!,
        address: `127.0.0.1:${p}`,
        exited,
        kill(signal = 'SIGKILL') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway process on port ${port} exited with ${code} before it was ready; stderr: ${stderr}`));
    });
  });
}
