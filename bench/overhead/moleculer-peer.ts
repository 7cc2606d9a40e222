// The Moleculer peer: two brokers, one hop over the TCP transporter. Each lists the other
// at a fixed loopback address, so neither needs UDP discovery or a network.
import type { BrokerOptions } from 'moleculer';

export const SERVICE_NODE_ID = 'echo-service';
export const CALLER_NODE_ID = 'caller';

export function brokerOptions(nodeID: string, port: number, peerId: string, peerPort: number): BrokerOptions {
  return {
    nodeID,
    logger: false,
    transporter: { type: 'TCP', options: { udpDiscovery: false, useHostname: false, port, urls: [`tcp://127.0.0.1:${peerPort}/${peerId}`] } },
  };
}
