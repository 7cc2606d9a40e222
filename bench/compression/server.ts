// Server process for the compression benchmark. MODE=gateway: the EasyRemote gateway as
// shipped (its intake refuses compressed requests on the headers). MODE=plain: a bare
// grpc-js server with the same message limit whose handler refuses the call after grpc-js
// has read (and inflated) it, which is what checking in the handler would cost.
// Prints "ready <port>"; on SIGUSR2 prints "mem <rss before> <peak rss>" in bytes, where
// "before" is the resident size when the previous SIGUSR2 came (or at ready).
import * as grpc from '@grpc/grpc-js';
import { Gateway } from '@easyremote/gateway';
import { DEFAULT_MAX_PAYLOAD_BYTES, ENVELOPE_SLACK_BYTES, GatewayService } from '@easyremote/protocol';

async function listen(): Promise<number> {
  if (process.env.MODE === 'plain') {
    const server = new grpc.Server({ 'grpc.max_receive_message_length': DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES });
    const refuse = (_call: unknown, callback: grpc.sendUnaryData<never>) => callback({ code: grpc.status.INVALID_ARGUMENT, details: 'refused after reading' });
    server.addService(GatewayService, { call: refuse, callStream: (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', { code: grpc.status.INVALID_ARGUMENT }) });
    return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
  }
  const gw = new Gateway({ port: 0, logger: { level: 'silent' }, metrics: false });
  await gw.start();
  return gw.port;
}

const port = await listen();
// Sampled every millisecond, and the kernel's own high-water mark (ru_maxrss, KiB) as a check.
let before = process.memoryUsage().rss;
let maxRssBefore = process.resourceUsage().maxRSS;
let peak = before;
setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 1);
process.on('SIGUSR2', () => {
  const maxRss = process.resourceUsage().maxRSS;
  const kernelPeak = maxRss > maxRssBefore ? maxRss * 1024 : 0;
  console.log(`mem ${before} ${Math.max(peak, kernelPeak)}`);
  before = peak = process.memoryUsage().rss;
  maxRssBefore = process.resourceUsage().maxRSS;
});
console.log(`ready ${port}`);
