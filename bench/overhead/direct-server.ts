// The plain grpc-js peer: a unary server echoing a MessagePack message, grpc-js defaults
// otherwise. Prints `ready <port>`; answers `cpu` on the control channel.
import * as grpc from '@grpc/grpc-js';
import { serveControl } from '../control.js';
import { EchoService, MESSAGE_LIMITS } from './echo-service.js';

const server = new grpc.Server(MESSAGE_LIMITS);
server.addService(EchoService, {
  echo: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, call.request),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  serveControl();
  console.log(`ready ${port}`);
});
process.on('SIGTERM', () => process.exit(0));
