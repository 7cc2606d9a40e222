import { Gateway } from '@easyremote/gateway';

const gw = new Gateway({ port: 0, log: () => undefined });
await gw.start();
console.log(`ready ${gw.port}`);
