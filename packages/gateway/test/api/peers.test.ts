import { describe, expect, it } from 'vitest';
import { peersDocument, type LinkedNode } from '../../src/api/peers.js';

const link = (address: string, gatewayId: string, registered: boolean, self = false) => ({ address, gatewayId, registered, self });

describe('peersDocument', () => {
  it('matches node links to configured peers by address, counts them, and lists the rest as unlisted', () => {
    const nodes: LinkedNode[] = [
      { gateways: [link('gw-a:1', 'A', true, true), link('gw-b:1', 'B', true), link('gw-c:1', 'C', true)] },
      // This node dials gateway A by another name, and B has restarted (a new id) while it was away.
      { gateways: [link('10.0.0.1:1', 'A', true, true), link('gw-b:1', 'B2', false)] },
      // A node from another language reports no links.
      { gateways: [] },
      // A link naming this gateway's id without being the report's own.
      { gateways: [link('gw-a-alias:1', 'A', true)] },
    ];
    expect(peersDocument({ id: 'A', address: () => '0.0.0.0:1', peers: ['gw-b:1', 'gw-d:1', 'gw-b:1'], nodes: () => nodes })).toEqual({
      self: { id: 'A', address: '0.0.0.0:1', knownAs: ['10.0.0.1:1', 'gw-a-alias:1', 'gw-a:1'], nodes: 4 },
      peers: [
        { address: 'gw-b:1', ids: ['B', 'B2'], nodesLinked: 2, nodesRegistered: 1 },
        { address: 'gw-d:1', ids: [], nodesLinked: 0, nodesRegistered: 0 },
      ],
      unlisted: [{ address: 'gw-c:1', ids: ['C'], nodesLinked: 1, nodesRegistered: 1 }],
    });
  });
});
