// Gateway process for the metrics benchmark: METRICS_PATH=<file> or METRICS=off.
// SIGUSR2 prints its CPU time so far (µs), for CPU per call over a window.
import { Gateway } from '@easyremote/gateway';

const gw = new Gateway({ port: 0, logger: { level: 'silent' }, metrics: process.env.METRICS === 'off' ? false : { path: process.env.METRICS_PATH! } });
await gw.start();
console.log(`ready ${gw.port}`);
process.on('SIGUSR2', () => {
  const u = process.cpuUsage();
  console.log(`cpu ${u.user + u.system}`);
});
process.on('SIGTERM', () => void gw.stop().then(() => process.exit(0)));
