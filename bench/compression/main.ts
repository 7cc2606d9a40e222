// Gzip bombs at the gateway: 20 concurrent Call requests, each a 64 KB gzip stream that
// inflates to a 64 MB request (zeros), sent over bare HTTP/2 with grpc-encoding gzip. The
// gateway refuses compressed requests on their headers, before grpc-js reads a byte; the
// baseline is a bare grpc-js server with the same message limit that refuses in its
// handler, after grpc-js has inflated the request. Reported: each server's peak RSS
// increase over the burst (target for the gateway: under +100 MB).
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import type { ChildProcess } from 'node:child_process';
import { CallRequest } from '@easyremote/protocol';
import { machine, spawnTs, stopAll, table, writeSection } from '../lib.js';

const CONCURRENT = 20;
const INFLATED_BYTES = 64_000_000;
const ROUNDS = 3;
const MB = 1e6;

function bomb(): Buffer {
  const inflated = Buffer.from(CallRequest.encode({ function: 'ping', args: Buffer.alloc(INFLATED_BYTES), options: undefined }).finish());
  const gz = gzipSync(inflated, { level: 9 });
  const head = Buffer.alloc(5);
  head[0] = 1; // compressed
  head.writeUInt32BE(gz.length, 1);
  return Buffer.concat([head, gz]);
}

/** One request over its own HTTP/2 connection; resolves with its grpc-status. */
function send(address: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://${address}`, { maxSessionMemory: Number.MAX_SAFE_INTEGER });
    session.on('error', () => resolve(-1));
    const stream = session.request({ ':method': 'POST', ':path': '/easyremote.v1.Gateway/Call', 'content-type': 'application/grpc', te: 'trailers', 'grpc-encoding': 'gzip' });
    let status = -1;
    stream.on('response', (h) => h['grpc-status'] !== undefined && (status = Number(h['grpc-status'])));
    stream.on('trailers', (t) => (status = Number(t['grpc-status'])));
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      session.close();
      resolve(status);
    });
    stream.end(body);
  });
}

function memory(child: ChildProcess): Promise<{ before: number; peak: number }> {
  return new Promise((resolve) => {
    const onData = (d: Buffer) => {
      const m = /mem (\d+) (\d+)/.exec(d.toString());
      if (m) {
        child.stdout!.off('data', onData);
        resolve({ before: Number(m[1]), peak: Number(m[2]) });
      }
    };
    child.stdout!.on('data', onData);
    child.kill('SIGUSR2');
  });
}

const body = bomb();
const rows: Array<Array<string | number>> = [];
const figures: Record<string, { peakMb: number[]; ms: number[] }> = {};
for (const mode of ['gateway', 'plain'] as const) {
  figures[mode] = { peakMb: [], ms: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const server = await spawnTs('bench/compression/server.ts', { MODE: mode });
    const address = `127.0.0.1:${server.line.split(' ')[1]}`;
    await new Promise((r) => setTimeout(r, 500)); // let startup settle
    await memory(server.child); // resets "before" to now
    const t0 = performance.now();
    const statuses = await Promise.all(Array.from({ length: CONCURRENT }, () => send(address, body)));
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 200));
    const { before, peak } = await memory(server.child);
    if (statuses.some((s) => s !== 3)) throw new Error(`${mode}: expected INVALID_ARGUMENT (3) for every request, got ${statuses.join(',')}`);
    figures[mode].peakMb.push((peak - before) / MB);
    figures[mode].ms.push(ms);
    server.child.kill('SIGKILL');
  }
}
stopAll();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const label = { gateway: 'EasyRemote gateway (refused on the headers)', plain: 'bare grpc-js server (refused in the handler)' };
for (const mode of ['gateway', 'plain'] as const) {
  const f = figures[mode]!;
  rows.push([label[mode], `+${median(f.peakMb).toFixed(1)}`, f.peakMb.map((x) => `+${x.toFixed(1)}`).join(', '), Math.round(median(f.ms))]);
}
const gatewayPeak = median(figures.gateway!.peakMb);
const plainPeak = median(figures.plain!.peakMb);
const md = table(['server', 'peak RSS increase, MB (median of 3)', 'runs', 'all 20 answered, ms (median)'], rows);
console.log(md);
writeSection(
  'compression',
  `## Compressed requests (\`pnpm bench:compression\`)

${CONCURRENT} concurrent \`Call\` requests over bare HTTP/2, each sent with \`grpc-encoding: gzip\`: a ${(body.length / 1000).toFixed(0)} KB gzip stream that inflates to a ${INFLATED_BYTES / MB} MB request (zeros), so ${((CONCURRENT * INFLATED_BYTES) / 1e9).toFixed(2)} GB if inflated. Each server runs in its own process, fresh for each of ${ROUNDS} rounds; its peak resident size over the burst (sampled every millisecond and checked against the kernel's high-water mark) less its resident size before. Every request is answered \`INVALID_ARGUMENT\` by both. Machine: ${machine()}.

${md}

The gateway refuses compressed requests in its intake interceptor, on the request's headers, so grpc-js never reads or inflates the body: **+${gatewayPeak.toFixed(1)} MB** against the target of under +100 MB. The baseline, a grpc-js server with the same message limit that refuses in its handler, pays for inflating every request first: +${plainPeak.toFixed(0)} MB.`,
);
process.exit(0);
