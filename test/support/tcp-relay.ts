// Test support: a TCP relay in front of a gateway, whose connections a test can cut at
// once (both sides destroyed), as a gateway that died or a network that broke would cut
// them, while new connections still pass.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpRelay {
  readonly address: string;
  /** Destroys every open connection through the relay; it keeps accepting new ones. */
  cut(): void;
  close(): Promise<void>;
}

export async function tcpRelay(target: string): Promise<TcpRelay> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  const server: Server = createServer((inbound) => {
    const outbound = connect(port, host);
    track(inbound);
    track(outbound);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    address,
    cut() {
      for (const s of sockets) s.resetAndDestroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
