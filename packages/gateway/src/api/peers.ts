// What a gateway knows of the other gateways: its `peers` configuration, and the links
// its nodes report (Register / Heartbeat `gateways`). It never dials a peer: everything
// here comes from the nodes, so it needs no connection, token or certificate of its own,
// and a peer the nodes cannot reach shows as such (linked, not registered).
import type { NodeGatewayLink, PeerInfo, PeersDocument } from '@easyremote/protocol';

/** A node as the peer view needs it. */
export interface LinkedNode {
  readonly gateways: readonly NodeGatewayLink[];
}

export interface PeersParts {
  /** This gateway's id. */
  id: string;
  /** The address it listens on (host:port). */
  address(): string;
  /** Configured peer addresses, in order (duplicates and this gateway's own address are left to the operator). */
  peers: readonly string[];
  nodes(): Iterable<LinkedNode>;
}

class Tally {
  readonly ids = new Set<string>();
  linked = 0;
  registered = 0;

  add(link: NodeGatewayLink): void {
    this.linked += 1;
    if (link.registered) this.registered += 1;
    if (link.gatewayId !== '') this.ids.add(link.gatewayId);
  }

  info(address: string): PeerInfo {
    return { address, ids: [...this.ids].sort(), nodesLinked: this.linked, nodesRegistered: this.registered };
  }
}

/**
 * Each node's links are matched to a configured peer by address, exactly as written (a
 * node that dials `gw-b:50051` matches a peer configured as `gw-b:50051`, not one
 * configured as `10.0.0.2:50051`). A link is this gateway's when the node marks it as
 * the link the report came on, or names this gateway's id.
 */
export function peersDocument(parts: PeersParts): PeersDocument {
  const configured = new Map(parts.peers.map((address) => [address, new Tally()]));
  const unlisted = new Map<string, Tally>();
  const knownAs = new Set<string>();
  let nodes = 0;
  for (const node of parts.nodes()) {
    nodes += 1;
    for (const link of node.gateways) {
      if (link.self || link.gatewayId === parts.id) {
        knownAs.add(link.address);
        continue;
      }
      let tally = configured.get(link.address);
      if (tally === undefined) {
        tally = unlisted.get(link.address);
        if (tally === undefined) unlisted.set(link.address, (tally = new Tally()));
      }
      tally.add(link);
    }
  }
  return {
    self: { id: parts.id, address: parts.address(), knownAs: [...knownAs].sort(), nodes },
    peers: [...configured].map(([address, tally]) => tally.info(address)),
    unlisted: [...unlisted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([address, tally]) => tally.info(address)),
  };
}
