// A gateway as shipped (metrics in an SQLite file of its own), in its own process, on
// PORT (so that a killed one can be started again in its place), with PEERS. Prints
// `ready <port> <id>`; answers `cpu` on the control channel.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway } from '@easyremote/gateway';
import { serveControl } from '../control.js';

const dir = mkdtempSync(join(tmpdir(), 'easyremote-bench-scale-out-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const gw = new Gateway({
  port: Number(process.env.PORT ?? 0),
  peers: process.env.PEERS ? process.env.PEERS.split(',') : undefined,
  metrics: { path: join(dir, 'metrics.db') },
  logger: { level: 'warn' },
});
await gw.start();
serveControl();
console.log(`ready ${gw.port} ${gw.id}`);
process.on('SIGTERM', () => {
  setTimeout(() => process.exit(0), 2000).unref();
  void gw.stop().then(() => process.exit(0));
});
