// One compute node process: `NODE_ID=gpu-1 MS_PER_EPOCH=5 GATEWAY=127.0.0.1:50051 tsx node.ts`
import { ComputeNode } from '@easyremote/node';
import { Trainer } from './trainer.js';

const nodeId = process.env.NODE_ID ?? 'node';
const node = new ComputeNode({ gateway: process.env.GATEWAY ?? '127.0.0.1:50051', nodeId, labels: { location: 'lab' } });
node.serve(new Trainer(nodeId, Number(process.env.MS_PER_EPOCH ?? 5)));
await node.start();
console.log('ready');
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void node.drain().then(() => process.exit(0)));
