// One name standing for several gateways: the expansion rule, and a node and a client
// given only the name (resolved by an injected lookup to two loopback addresses, each
// with a gateway on the same port).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import type { Gateway } from '@easyremote/gateway';
import { ComputeNode } from '@easyremote/node';
import { expandGatewayAddresses, targetChannelOptions, type AddressLookup } from '@easyremote/protocol';
import { freePort, startGateway, waitFor } from './support/cluster.js';

const table: Record<string, Array<{ address: string; family: number }>> = {
  'gateways.test': [
    { address: '127.0.0.1', family: 4 },
    { address: '127.0.0.2', family: 4 },
  ],
  'dual.test': [
    { address: '127.0.0.1', family: 4 },
    { address: '::1', family: 6 },
  ],
  'six.test': [
    { address: '::1', family: 6 },
    { address: 'fd00::2', family: 6 },
  ],
};
const asked: string[] = [];
const lookup: AddressLookup = async (host) => {
  asked.push(host);
  const found = table[host];
  if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return found;
};

describe('expandGatewayAddresses', () => {
  it('a name with several addresses of one family stands for each; anything else stays as given', async () => {
    asked.length = 0;
    expect(await expandGatewayAddresses(['gateways.test:7000', '10.1.2.3:7000', 'dual.test:7000', 'six.test:7000', 'nowhere.test:7000', 'dns:///x:1'], lookup)).toEqual([
      { address: '127.0.0.1:7000', name: 'gateways.test', given: 'gateways.test:7000' },
      { address: '127.0.0.2:7000', name: 'gateways.test', given: 'gateways.test:7000' },
      { address: '10.1.2.3:7000', given: '10.1.2.3:7000' },
      { address: 'dual.test:7000', given: 'dual.test:7000' },
      { address: '[::1]:7000', name: 'six.test', given: 'six.test:7000' },
      { address: '[fd00::2]:7000', name: 'six.test', given: 'six.test:7000' },
      { address: 'nowhere.test:7000', given: 'nowhere.test:7000' },
      { address: 'dns:///x:1', given: 'dns:///x:1' },
    ]);
    // IP literals are not looked up.
    expect(asked.sort()).toEqual(['dual.test', 'gateways.test', 'nowhere.test', 'six.test']);
    // The same gateway twice is one.
    expect(await expandGatewayAddresses(['127.0.0.1:7000', 'gateways.test:7000'], lookup)).toHaveLength(2);
  });

  it('an expanded address presents its name: :authority always, and the TLS name unless one is set', () => {
    const target = { address: '127.0.0.2:7000', name: 'gateways.test', given: 'gateways.test:7000' };
    expect(targetChannelOptions(target, false, undefined)).toEqual({ 'grpc.default_authority': 'gateways.test:7000' });
    expect(targetChannelOptions(target, true, undefined)).toEqual({ 'grpc.default_authority': 'gateways.test:7000', 'grpc.ssl_target_name_override': 'gateways.test' });
    expect(targetChannelOptions(target, true, 'other.example')).toEqual({ 'grpc.default_authority': 'gateways.test:7000' });
    expect(targetChannelOptions({ address: 'a:1', given: 'a:1' }, true, undefined)).toEqual({});
  });
});

describe('one name, two gateways', () => {
  let one: Gateway;
  let two: Gateway;
  let node: ComputeNode;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    one = await startGateway({ port, host: '127.0.0.1' });
    two = await startGateway({ port, host: '127.0.0.2', insecure: true });
    node = new ComputeNode({ gateways: [`gateways.test:${port}`], lookup, nodeId: 'named', telemetry: false, logger: { level: 'silent' } });
    node.register('where', () => 'here', { idempotent: true });
    await node.start();
  });

  afterAll(async () => {
    await node.stop();
    await Promise.all([one.stop(), two.stop()]);
  });

  it('a node registers on every address the name resolves to, a client spreads its calls over them', async () => {
    await waitFor('the node on both gateways', () => one.nodes().length === 1 && two.nodes().length === 1);
    expect(one.nodes()[0]!.gateways.map((g) => g.address).sort()).toEqual([`127.0.0.1:${port}`, `127.0.0.2:${port}`]);
    for (const transport of ['session', 'unary'] as const) {
      const client = connect(`gateways.test:${port}`, { lookup, transport });
      await client.waitForReady();
      expect(client.addresses).toEqual([`127.0.0.1:${port}`, `127.0.0.2:${port}`]);
      await Promise.all(Array.from({ length: 40 }, () => client.where()));
      client.close();
    }
    const served = (gw: Gateway) => gw.api.metrics().live.overall.calls;
    expect(served(one)).toBeGreaterThan(0);
    expect(served(two)).toBeGreaterThan(0);
    expect(served(one) + served(two)).toBe(80);
  });
});
