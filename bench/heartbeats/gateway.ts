// The gateway alone in its own process, for the heartbeat benchmark. On SIGUSR2 it prints
// one `stats` line: its own CPU time, memory, node count and the frames it received, so
// the parent can take deltas over a window without adding work to the measured process.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Gateway } from '@easyremote/gateway';

// Count frames by wrapping the gateway's (private) per-frame handler; packages/ stays as
// it is. One counter increment per frame is noise next to decoding the frame.
const counts = { heartbeat: 0, pong: 0, other: 0 };
const proto = Gateway.prototype as unknown as { onNodeFrame?: (session: unknown, frame: Record<string, unknown>) => void };
const original = proto.onNodeFrame;
const counted = typeof original === 'function';
if (counted) {
  proto.onNodeFrame = function (session, frame) {
    if (frame.heartbeat) counts.heartbeat++;
    else if (frame.pong) counts.pong++;
    else counts.other++;
    return original.call(this, session, frame);
  };
}

/** Established TCP connections on the gateway's port (from /proc/net/tcp; -1 elsewhere). */
function connections(port: number): number {
  if (process.platform !== 'linux') return -1;
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] (ADDR:PORT), st is f[3]; 01 = ESTABLISHED
      if (f.length > 3 && f[1]!.endsWith(`:${hexPort}`) && f[3] === '01') n++;
    }
  }
  return n;
}

// Call metrics stay on (the default) but go to the file the parent names, not ./easyremote-metrics.db.
const gw = new Gateway({ port: 0, host: '127.0.0.1', logger: { level: 'silent' }, metrics: { path: process.env.METRICS_PATH ?? ':memory:' } });
await gw.start();
const sessions = { joined: 0, left: 0, lost: 0, refused: 0, lastLost: '', lastRefused: '' };
gw.on('node-joined', () => sessions.joined++);
gw.on('node-left', (session, kind) => {
  if (kind === 'lost') {
    sessions.lost++;
    sessions.lastLost = session.endReason;
  } else sessions.left++;
});
gw.on('node-refused', (_nodeId, err) => {
  sessions.refused++;
  sessions.lastRefused = err.message;
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function stats(): Record<string, number | string> {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  const s = {
    t: performance.now(),
    userUs: cpu.user,
    systemUs: cpu.system,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    nodes: gw.registry.sessions.size,
    heartbeats: counted ? counts.heartbeat : -1,
    pongs: counted ? counts.pong : -1,
    otherFrames: counted ? counts.other : -1,
    connections: connections(gw.port),
    ...sessions,
  };
  return s;
}

// SIGUSR2: figures as they are. SIGHUP: a full GC first, for memory (outside CPU windows).
process.on('SIGUSR2', () => process.stdout.write(`stats ${JSON.stringify(stats())}\n`));
process.on('SIGHUP', () => {
  gc();
  process.stdout.write(`gcstats ${JSON.stringify(stats())}\n`);
});

// Never outlive the benchmark: exit when the parent is gone.
setInterval(() => {
  if (process.ppid === 1) process.exit(0);
}, 2000).unref();
setInterval(() => undefined, 1 << 30); // keep the loop alive while idle

console.log(`ready ${gw.port}`);
