// The gateway as shipped (default strategy, metrics on in an SQLite file), in its own
// process. METRICS=off turns metrics off; METRICS_PATH names the file (default: a temp
// dir of its own); HEARTBEAT_MS sets the heartbeat interval asked of nodes; TLS_CERT and
// TLS_KEY (PEM file paths) serve TLS on the gRPC port; STRATEGY sets the default strategy;
// COALESCE=off sends every frame as its own message; HEAP_HEADROOM sets heapHeadroomBytes. Prints
// `ready <port>`; answers `cpu` and profiles on the control channel.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway } from '@easyremote/gateway';
import { serveControl } from '../control.js';

let metricsPath = process.env.METRICS_PATH;
if (process.env.METRICS !== 'off' && !metricsPath) {
  // Keep the default file out of the repository.
  const dir = mkdtempSync(join(tmpdir(), 'easyremote-bench-overhead-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  metricsPath = join(dir, 'metrics.db');
}
const gw = new Gateway({
  port: 0,
  logger: { level: 'silent' },
  metrics: process.env.METRICS === 'off' ? false : { path: metricsPath! },
  heartbeatMs: process.env.HEARTBEAT_MS ? Number(process.env.HEARTBEAT_MS) : undefined,
  ...(process.env.STRATEGY ? { defaultStrategy: process.env.STRATEGY } : {}),
  ...(process.env.COALESCE === 'off' ? { coalesceFrames: false } : {}),
  ...(process.env.HEAP_HEADROOM ? { heapHeadroomBytes: Number(process.env.HEAP_HEADROOM) } : {}),
  ...(process.env.TLS_CERT ? { tls: { cert: process.env.TLS_CERT, key: process.env.TLS_KEY! } } : {}),
});
await gw.start();
serveControl();
console.log(`ready ${gw.port}`);
process.on('SIGTERM', () => {
  setTimeout(() => process.exit(0), 2000).unref();
  void gw.stop().then(() => process.exit(0));
});
