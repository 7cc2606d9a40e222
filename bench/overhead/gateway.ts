import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway } from '@easyremote/gateway';

// Default configuration (metrics on, in an SQLite file), with the file kept out of the repository.
const dir = mkdtempSync(join(tmpdir(), 'easyremote-bench-overhead-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
process.on('SIGTERM', () => process.exit(0));
const gw = new Gateway({ port: 0, log: () => undefined, metrics: { path: join(dir, 'metrics.db') } });
await gw.start();
console.log(`ready ${gw.port}`);
