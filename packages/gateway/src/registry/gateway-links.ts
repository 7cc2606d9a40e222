// A node's report of its links to gateways (Register and Heartbeat `gateways`), as
// operators see it: the node list and /api/peers.
import type { GatewayLinkState, NodeGatewayLink } from '@easyremote/protocol';
import { checkGatewayLinks } from './declaration-limits.js';

/**
 * The links as the admin documents carry them; undefined when the list breaks a limit (a
 * heartbeat's is then ignored). The link the report came on is registered here, whatever
 * the node knew when it wrote it (a register frame precedes its own acceptance).
 */
export function gatewayLinks(links: readonly GatewayLinkState[], gatewayId: string): NodeGatewayLink[] | undefined {
  if (checkGatewayLinks(links) !== undefined) return undefined;
  return links.map((l) =>
    l.thisLink ? { address: l.address, gatewayId, registered: true, self: true } : { address: l.address, gatewayId: l.gatewayId, registered: l.registered, self: false },
  );
}
