// The command line with several gateways: `--gateway a,b` makes `easyremote node` register
// on each and `easyremote call` spread over them and go on when one is gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '@easyremote/gateway';
import { runCli, startCli, type CliProcess } from './support/cli.js';
import { startGateway } from './support/cluster.js';

const FUNCTIONS = 'test/fixtures/cli-functions.js';
let a: Gateway;
let b: Gateway;
let node: CliProcess;

beforeAll(async () => {
  a = await startGateway();
  b = await startGateway();
  node = startCli(['node', FUNCTIONS, '--id', 'both', '--gateway', `${a.address}, ${b.address}`]);
  await node.waitForLine(/^node both serving hello, nap through /);
}, 60_000);

afterAll(async () => {
  node.signal('SIGKILL');
  await node.exited;
  await a.stop();
  await b.stop();
});

describe('easyremote with several gateways', () => {
  it('the node registers on every gateway it is given', async () => {
    for (const gw of [a, b]) {
      for (let i = 0; i < 100 && gw.nodes().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(gw.nodes().map((n) => n.nodeId)).toEqual(['both']);
    }
  });

  it('call goes through either gateway, and through the other when one is stopped', async () => {
    const gateways = `${a.address},${b.address}`;
    expect(await runCli(['call', 'hello', '--gateway', gateways])).toMatchObject({ code: 0, stdout: 'hello\n' });
    await a.stop();
    expect(await runCli(['call', 'hello', '--gateway', gateways])).toMatchObject({ code: 0, stdout: 'hello\n' });
  });

  it('an address list with a bad entry is refused, naming the setting', async () => {
    expect(await runCli(['call', 'hello', '--gateway', `${b.address},nohostport`])).toMatchObject({ code: 2, stderr: expect.stringContaining('gateway: expected gateway addresses (host:port, several separated by commas)') });
  });
});
