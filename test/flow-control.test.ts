// HTTP/2 flow-control windows, as a peer on the wire sees them: the gateway and a node's
// direct server raise theirs on every accepted connection (grpc-js's server has no option
// for it), and the TypeScript client's and node's channels advertise theirs. Each is
// checked with a raw HTTP/2 peer, not through grpc-js.
import http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@easyremote/client';
import { ComputeNode } from '@easyremote/node';
import * as grpc from '@grpc/grpc-js';
import { HTTP2_WINDOW_BYTES, raiseServerWindows } from '@easyremote/protocol';
import { startGateway, startNode, waitFor } from './support/cluster.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What a raw client sees of a server's windows: its SETTINGS_INITIAL_WINDOW_SIZE and its connection window. */
async function serverWindows(address: string): Promise<{ stream: number; connection: number }> {
  const session = http2.connect(`http://${address}`);
  cleanups.push(() => session.destroy());
  let stream = 0;
  session.on('remoteSettings', (s) => (stream = s.initialWindowSize ?? stream));
  await waitFor('the server\'s windows', () => stream === HTTP2_WINDOW_BYTES && session.state.remoteWindowSize === HTTP2_WINDOW_BYTES, 5000).catch(() => undefined);
  return { stream, connection: session.state.remoteWindowSize ?? 0 };
}

/** A raw HTTP/2 server that records the windows each connecting channel advertises (it answers nothing). */
async function windowRecorder(): Promise<{ address: string; seen: () => { stream: number; connection: number } }> {
  const server = http2.createServer();
  let stream = 0;
  let session: http2.ServerHttp2Session | undefined;
  server.on('session', (s) => {
    session = s;
    s.on('remoteSettings', (settings) => (stream = settings.initialWindowSize ?? stream));
  });
  server.on('stream', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => { session?.destroy(); server.close(() => resolve()); }));
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, seen: () => ({ stream, connection: session?.state.remoteWindowSize ?? 0 }) };
}

describe('HTTP/2 windows', () => {
  it('the gateway grants every connection 4 MiB windows, per stream and per connection', async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    expect(HTTP2_WINDOW_BYTES).toBe(4 * 1024 * 1024);
    expect(await serverWindows(gw.address)).toEqual({ stream: HTTP2_WINDOW_BYTES, connection: HTTP2_WINDOW_BYTES });
    // Every connection, not only the first.
    expect(await serverWindows(gw.address)).toEqual({ stream: HTTP2_WINDOW_BYTES, connection: HTTP2_WINDOW_BYTES });
  });

  it('reports whether it could reach a grpc-js server\'s connections, and never throws', () => {
    expect(raiseServerWindows(new grpc.Server())).toBe(true);
    expect(raiseServerWindows({} as grpc.Server)).toBe(false);
  });

  it("a node's direct server grants the same", async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    const node = await startNode(gw.address, (n) => n.register('f', () => 1), { nodeId: 'direct-1', telemetry: false, direct: { listen: '127.0.0.1:0' } });
    cleanups.push(() => node.stop());
    expect(await serverWindows(node.directAddress)).toEqual({ stream: HTTP2_WINDOW_BYTES, connection: HTTP2_WINDOW_BYTES });
  });

  it("the client's and the node's channels advertise 4 MiB windows", async () => {
    const forClient = await windowRecorder();
    const client = new Client(forClient.address);
    cleanups.push(() => client.close());
    void client.call('f', [], { timeout: 300 }).catch(() => undefined);
    await waitFor('the client\'s windows', () => forClient.seen().stream === HTTP2_WINDOW_BYTES && forClient.seen().connection === HTTP2_WINDOW_BYTES, 5000).catch(() => undefined);
    expect(forClient.seen()).toEqual({ stream: HTTP2_WINDOW_BYTES, connection: HTTP2_WINDOW_BYTES });

    const forNode = await windowRecorder();
    const node = new ComputeNode({ gateway: forNode.address, telemetry: false, connectTimeoutMs: 2000 });
    node.register('f', () => 1);
    void node.start().catch(() => undefined);
    cleanups.push(() => node.stop());
    await waitFor('the node\'s windows', () => forNode.seen().stream === HTTP2_WINDOW_BYTES && forNode.seen().connection === HTTP2_WINDOW_BYTES, 5000).catch(() => undefined);
    expect(forNode.seen()).toEqual({ stream: HTTP2_WINDOW_BYTES, connection: HTTP2_WINDOW_BYTES });
  });
});
