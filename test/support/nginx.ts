// Debian's nginx in front of test gateways, with the shipped configuration
// (deploy/nginx/easyremote.conf): its upstream servers replaced by the given gateways and
// its listen address by a loopback port, everything else as shipped. One process, no
// daemon, files in a temp dir of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cluster.js';

export const NGINX_BIN = '/usr/sbin/nginx';
export const SHIPPED_CONFIG = join(ROOT, 'deploy/nginx/easyremote.conf');

export interface NginxProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly address: string;
  /** The error log so far (nginx says there why it passed a request on). */
  errorLog(): string;
  stop(): Promise<void>;
}

/** The shipped configuration with these upstream gateways and this listen port. */
export function nginxConfig(gateways: readonly string[], port: number): string {
  const shipped = readFileSync(SHIPPED_CONFIG, 'utf8');
  const upstream = /upstream easyremote_gateways \{[\s\S]*?\n\}/.exec(shipped)?.[0];
  if (upstream === undefined) throw new Error(`${SHIPPED_CONFIG} has no upstream easyremote_gateways block`);
  const servers = [...upstream.matchAll(/^(\s*)server \S+( [^;]*)?;$/gm)];
  if (servers.length === 0) throw new Error(`${SHIPPED_CONFIG}: no server lines in the upstream block`);
  const [, indent, params] = servers[0]!;
  let rewritten = upstream.replace(/^\s*server \S+( [^;]*)?;\n/gm, '');
  rewritten = rewritten.replace('least_conn;\n', `least_conn;\n${gateways.map((g) => `${indent}server ${g}${params ?? ''};`).join('\n')}\n`);
  const listen = /^(\s*)listen \S+ http2;$/m;
  if (!listen.test(shipped)) throw new Error(`${SHIPPED_CONFIG}: no "listen <port> http2;" line`);
  return shipped.replace(upstream, rewritten).replace(listen, `$1listen 127.0.0.1:${port} http2;`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

export function nginxAvailable(): boolean {
  return existsSync(NGINX_BIN);
}

/**
 * Starts Debian's nginx in a temp dir of its own (one process, no daemon) and waits until
 * it accepts connections on `port`. `http(dir)` gives the body of its http block (and may
 * write files it includes into `dir`).
 */
export async function runNginx(http: (dir: string) => string, port: number, startTimeoutMs = 10_000): Promise<NginxProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'easyremote-nginx-'));
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  const log = join(dir, 'error.log');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${log} info;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${http(dir)}
}
`,
  );
  const child = spawn(NGINX_BIN, ['-p', dir, '-e', log, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const errorLog = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  const until = Date.now() + startTimeoutMs;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr} ${errorLog().slice(-1000)}`);
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not listen on ${port} within ${startTimeoutMs} ms: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    port,
    address: `127.0.0.1:${port}`,
    errorLog,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts nginx on `port` in front of `gateways` (host:port each), with the shipped configuration. */
export function startNginx(gateways: readonly string[], port: number, startTimeoutMs = 10_000): Promise<NginxProcess> {
  return runNginx(
    (dir) => {
      writeFileSync(join(dir, 'easyremote.conf'), nginxConfig(gateways, port));
      return `  include ${dir}/easyremote.conf;`;
    },
    port,
    startTimeoutMs,
  );
}
