// One compute node linked to every gateway in GATEWAYS (comma-separated), as NODE_ID:
// `echo` (idempotent), and `hold_idem` / `hold_once` (wait `ms`, idempotent or not) for
// calls that are in flight when a gateway dies. Prints `ready` once registered.
import { ComputeNode } from '@easyremote/node';
import { serveControl } from '../control.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const node = new ComputeNode({ gateways: process.env.GATEWAYS!.split(','), nodeId: process.env.NODE_ID!, telemetry: false, logger: { level: 'warn' }, backoff: { initialMs: 50, maxMs: 500 } });
node.register('echo', (value: unknown) => value, { idempotent: true });
node.register('hold_idem', async (ms: number) => (await sleep(ms), 'ok'), { idempotent: true });
node.register('hold_once', async (ms: number) => (await sleep(ms), 'ok'));
await node.start();
serveControl();
console.log('ready');
process.on('SIGTERM', () => {
  setTimeout(() => process.exit(0), 1000).unref();
  void node.stop().then(() => process.exit(0));
});
