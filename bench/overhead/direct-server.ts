// Baseline: a plain grpc-js unary server with the gateway's Call signature, echoing arg 0.
import * as grpc from '@grpc/grpc-js';
import { GatewayService, decodeArgs, encode, type CallReply, type CallRequest } from '@easyremote/protocol';

const server = new grpc.Server();
server.addService(GatewayService, {
  call: (call: grpc.ServerUnaryCall<CallRequest, CallReply>, cb: grpc.sendUnaryData<CallReply>) => {
    cb(null, { result: encode(decodeArgs(call.request.args)[0]), nodeId: 'direct', cached: false });
  },
  callStream: (call: grpc.ServerWritableStream<CallRequest, unknown>) => call.end(),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(`ready ${port}`);
});
