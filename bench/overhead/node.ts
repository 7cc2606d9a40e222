import { ComputeNode } from '@easyremote/node';

const node = new ComputeNode({ gateway: process.env.GATEWAY!, nodeId: 'echo-node' });
node.register('echo', (value: unknown) => value);
await node.start();
console.log('ready');
