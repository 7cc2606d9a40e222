// Gateway process for the metrics benchmark: METRICS_PATH=<file> or METRICS=off.
import { Gateway } from '@easyremote/gateway';

const gw = new Gateway({ port: 0, log: () => undefined, metrics: process.env.METRICS === 'off' ? false : { path: process.env.METRICS_PATH! } });
await gw.start();
console.log(`ready ${gw.port}`);
process.on('SIGTERM', () => void gw.stop().then(() => process.exit(0)));
