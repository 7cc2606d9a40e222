// Gateway process for the metrics benchmark: METRICS_PATH=<file> or METRICS=off.
// SIGUSR2 prints its CPU time so far (µs): the whole process (the metrics writer thread
// included) and its main thread alone, for CPU per call over a window.
import { Gateway } from '@easyremote/gateway';
import { threadCpuUs } from '../lib.js';

const gw = new Gateway({ port: 0, logger: { level: 'silent' }, metrics: process.env.METRICS === 'off' ? false : { path: process.env.METRICS_PATH! } });
await gw.start();
console.log(`ready ${gw.port}`);
process.on('SIGUSR2', () => {
  const u = process.cpuUsage();
  console.log(`cpu ${u.user + u.system} main ${threadCpuUs() ?? -1}`);
});
process.on('SIGTERM', () => void gw.stop().then(() => process.exit(0)));
