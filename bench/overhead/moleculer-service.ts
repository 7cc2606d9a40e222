// The Moleculer peer's service broker: service `echo`, action `echo` returning its params.
// PORT is this broker's TCP port, CALLER_PORT the caller broker's. Prints `ready`.
import { ServiceBroker } from 'moleculer';
import { serveControl } from '../control.js';
import { CALLER_NODE_ID, SERVICE_NODE_ID, brokerOptions } from './moleculer-peer.js';

const broker = new ServiceBroker(brokerOptions(SERVICE_NODE_ID, Number(process.env.PORT), CALLER_NODE_ID, Number(process.env.CALLER_PORT)));
broker.createService({ name: 'echo', actions: { echo: (ctx) => ctx.params } });
await broker.start();
serveControl();
console.log('ready');
