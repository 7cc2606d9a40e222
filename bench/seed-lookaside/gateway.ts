// The gateway for bench:seed-lookaside, in its own process: as shipped (default strategy,
// call metrics in an SQLite file of its own), with its HTTP API on for /api/backends.
// Prints `ready <grpc port> <http port>`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway } from '@easyremote/gateway';

const dir = mkdtempSync(join(tmpdir(), 'easyremote-bench-seed-lookaside-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const gw = new Gateway({ port: 0, httpPort: 0, logger: { level: 'silent' }, metrics: { path: join(dir, 'metrics.db') } });
await gw.start();
console.log(`ready ${gw.port} ${gw.httpPort}`);
process.on('SIGTERM', () => {
  setTimeout(() => process.exit(0), 2000).unref();
  void gw.stop().then(() => process.exit(0));
});
