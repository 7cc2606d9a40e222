// The floor under the provider table: what fanning calls out over many node connections
// costs a server that does nothing else. No project code runs here. A server keeps
// IN_FLIGHT round trips going over long-lived bidirectional streams, one per node
// connection (as each compute node has its own), each item a 96-byte message the node
// echoes. Items produced in one turn of the event loop for the same stream go out as one
// message, as the gateway coalesces frames. Two setups share the process and take turns:
// `one`, where every item goes to a single stream (so the items in flight share a few
// writes, as one provider's calls do), and `many`, where each item goes to the next of
// COUNT streams (as calls spread over COUNT providers do). IMPL picks the transport:
// `grpc-js` (a bidi method with raw buffers) or `http2` (node:http2 request streams,
// no gRPC library at all). Prints `result <json>`: the server's CPU µs per round trip in
// each window, per setup, ROUNDS windows of WINDOW_S each, alternating.
//
// Run by bench/overhead/main.ts; ROLE=nodes is the node side, started by the server.
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { spawnTs } from '../lib.js';

const IMPL = process.env.IMPL === 'http2' ? 'http2' : 'grpc-js';
const ITEM_BYTES = 96;
const ITEM = Buffer.alloc(ITEM_BYTES, 7);
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 64);
const NODES_PER_PROCESS = 500;
const identity = (b: Buffer) => b;
const LINK = {
  link: { path: '/bench.Floor/Link', requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
} satisfies grpc.ServiceDefinition;

/** The server's end of one node's stream. */
interface LinkEnd {
  write(bytes: Buffer): void;
  /** Bytes received and not yet a whole item (node:http2 does not keep message boundaries). */
  partial: number;
}

if (process.env.ROLE === 'nodes') {
  const address = process.env.ADDRESS!;
  const count = Number(process.env.COUNT);
  const Ctor = grpc.makeGenericClientConstructor(LINK, 'Floor');
  for (let i = 0; i < count; i++) {
    if (IMPL === 'grpc-js') {
      // A channel of its own per node: no connection shared between them.
      const client = new Ctor(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as grpc.Client & { link(): grpc.ClientDuplexStream<Buffer, Buffer> };
      const stream = client.link();
      stream.on('data', (b: Buffer) => stream.write(b));
      stream.on('error', () => {});
      stream.write(Buffer.from('hello'));
    } else {
      const session = http2.connect(`http://${address}`);
      session.on('error', () => {});
      const stream = session.request({ ':method': 'POST', ':path': '/link' }, { endStream: false });
      stream.on('data', (b: Buffer) => stream.write(b));
      stream.on('error', () => {});
      stream.write(Buffer.from('hello'));
    }
  }
  console.log('ready');
} else {
  const COUNT = Number(process.env.COUNT ?? 1000);
  const ROUNDS = Number(process.env.ROUNDS ?? 5);
  const WINDOW_S = Number(process.env.WINDOW_S ?? 2);

  class Setup {
    readonly links: LinkEnd[] = [];
    private next = 0;
    running = false;
    done = 0;
    inFlight = 0;
    private readonly queued = new Map<LinkEnd, number>();
    private flushing = false;

    constructor(
      readonly name: 'one' | 'many',
      readonly want: number,
    ) {}

    pick(): LinkEnd {
      return this.name === 'one' ? this.links[0]! : this.links[this.next++ % this.links.length]!;
    }

    send(): void {
      const link = this.pick();
      this.inFlight++;
      this.queued.set(link, (this.queued.get(link) ?? 0) + 1);
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    }

    private flush(): void {
      this.flushing = false;
      for (const [link, k] of this.queued) link.write(k === 1 ? ITEM : Buffer.concat(Array<Buffer>(k).fill(ITEM)));
      this.queued.clear();
    }

    /** `bytes` arrived on `link`: each whole item is a round trip done, and another goes out while running. */
    received(link: LinkEnd, bytes: number): void {
      link.partial += bytes;
      while (link.partial >= ITEM_BYTES) {
        link.partial -= ITEM_BYTES;
        this.done++;
        this.inFlight--;
        if (this.running) this.send();
      }
    }
  }

  const setups = [new Setup('one', 1), new Setup('many', COUNT)];
  const waiting: Setup[] = [...setups];
  // Streams join the setup that still wants streams, in the order the node processes start.
  const join = (end: LinkEnd): Setup => {
    const s = waiting[0]!;
    s.links.push(end);
    if (s.links.length === s.want) waiting.shift();
    return s;
  };

  /** The handler of what one node's stream delivers: its first message joins it to a setup, the rest are echoes. */
  const onData = (write: (bytes: Buffer) => void) => {
    const end: LinkEnd = { write, partial: 0 };
    let setup: Setup | undefined;
    return (b: Buffer) => {
      if (setup === undefined) setup = join(end);
      else setup.received(end, b.length);
    };
  };

  let address: string;
  if (IMPL === 'grpc-js') {
    const server = new grpc.Server();
    server.addService(LINK, {
      link(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
        call.on('data', onData((b) => void call.write(b)));
        call.on('error', () => {});
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    address = `127.0.0.1:${port}`;
  } else {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.on('data', onData((b) => void stream.write(b)));
      stream.on('error', () => {});
    });
    server.on('sessionError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const connect = async (count: number) => {
    const want = waiting[0]!;
    for (let k = 0; k * NODES_PER_PROCESS < count; k++) {
      await spawnTs('bench/overhead/fanout-floor.ts', { ROLE: 'nodes', IMPL, ADDRESS: address, COUNT: String(Math.min(NODES_PER_PROCESS, count - k * NODES_PER_PROCESS)) });
    }
    for (let i = 0; want.links.length < want.want; i++) {
      if (i > 600) throw new Error(`only ${want.links.length} of ${want.want} streams joined`);
      await sleep(50);
    }
  };
  await connect(1);
  await connect(COUNT);

  /** One window of `seconds` on a setup: server CPU µs per round trip finished in it. */
  const window = async (s: Setup, seconds: number): Promise<number> => {
    s.running = true;
    const before = process.cpuUsage();
    const done0 = s.done;
    for (let i = 0; i < IN_FLIGHT; i++) s.send();
    await sleep(seconds * 1000);
    const used = process.cpuUsage(before);
    const done = s.done - done0;
    s.running = false;
    for (let i = 0; s.inFlight > 0; i++) {
      if (i > 200) throw new Error(`${s.inFlight} round trips did not come back`);
      await sleep(10);
    }
    return (used.user + used.system) / done;
  };
  for (const s of setups) await window(s, 1);
  const result: Record<'one' | 'many', number[]> = { one: [], many: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of round % 2 === 0 ? setups : [...setups].reverse()) result[s.name].push(await window(s, WINDOW_S));
  }
  console.log(`result ${JSON.stringify({ impl: IMPL, count: COUNT, ...result })}`);
  // The node processes are the bench's children too (spawnTs tracks them): they go when it exits.
  setTimeout(() => process.exit(0), 100);
}
