// EventStream over a real loopback HTTP server, with fake time: one snapshot per tick for
// every reader, the connection cap, the bounded buffer of a reader that does not read,
// and no timer while nobody listens.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_EVENT_STALL_MS, EVENT_RETRY_MS, EventStream, type EventStreamOptions } from '../../src/api/event-stream.js';
import { FakeClock } from '../support/fake-clock.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Harness {
  clock: FakeClock;
  stream: EventStream;
  port: number;
  built: () => number;
  /** Server-side responses, in order of arrival. */
  responses: ServerResponse[];
}

async function harness(snapshot: () => unknown = () => ({ hello: 'world' }), options: EventStreamOptions = {}): Promise<Harness> {
  const clock = new FakeClock();
  let built = 0;
  const stream = new EventStream(() => (built++, snapshot()), clock, options);
  const responses: ServerResponse[] = [];
  const server: Server = createServer((_req, res) => {
    responses.push(res);
    stream.accept(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        stream.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { clock, stream, port: (server.address() as { port: number }).port, built: () => built, responses };
}

interface Reader {
  res: IncomingMessage;
  ended: Promise<unknown>;
  /** The first 1,000 characters of the body. */
  text: () => string;
  /** Resolves when the body holds `count` complete events. */
  events: (count: number) => Promise<Event[]>;
  close: () => void;
}

interface Event {
  id: string;
  event: string;
  data: string;
}

function parseBlock(block: string): Event {
  const field = (name: string) => [...block.matchAll(/^(\w+): (.*)$/gm)].find((m) => m[1] === name)?.[2] ?? '';
  return { id: field('id'), event: field('event'), data: field('data') };
}

function open(port: number): Promise<Reader> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/events' }, (res) => {
      let head = '';
      let pending = '';
      const events: Event[] = [];
      const ended = new Promise((r) => res.on('end', r));
      const waiters: Array<() => void> = [];
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (head.length < 1_000) head += d.slice(0, 1_000);
        pending += d;
        for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n')) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          if (block.includes('data: ')) events.push(parseBlock(block));
        }
        for (const w of waiters.splice(0)) w();
      });
      resolve({
        res,
        ended,
        text: () => head,
        events: (count) =>
          new Promise((done, fail) => {
            const timer = setTimeout(() => fail(new Error(`only ${events.length} of ${count} events arrived: ${head.slice(0, 300)}`)), 5_000);
            const check = () => {
              if (events.length >= count) {
                clearTimeout(timer);
                done(events.slice());
              } else waiters.push(check);
            };
            check();
          }),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const until = async (what: string, check: () => boolean) => {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe('EventStream', () => {
  it('answers with text/event-stream, a retry hint and a snapshot at once, then one snapshot per interval', async () => {
    let n = 0;
    const h = await harness(() => ({ n: ++n }));
    const r = await open(h.port);
    expect(r.res.statusCode).toBe(200);
    expect(r.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(r.res.headers['cache-control']).toBe('no-store');
    expect(r.res.headers['x-accel-buffering']).toBe('no');
    expect(await r.events(1)).toEqual([{ id: '1', event: 'snapshot', data: '{"n":1}' }]);
    expect(r.text().startsWith(`retry: ${EVENT_RETRY_MS}\n\n`)).toBe(true);
    h.clock.advance(999);
    h.clock.advance(1);
    expect((await r.events(2))[1]).toEqual({ id: '2', event: 'snapshot', data: '{"n":2}' });
    h.clock.advance(3_000);
    expect((await r.events(5)).map((e) => e.data)).toEqual(['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}', '{"n":5}']);
  });

  it('builds each snapshot once for all readers; a reader arriving within the interval gets the last one', async () => {
    const h = await harness();
    const readers = [await open(h.port), await open(h.port), await open(h.port)];
    for (const r of readers) await r.events(1);
    expect(h.built()).toBe(1);
    h.clock.advance(1_000);
    for (const r of readers) await r.events(2);
    expect(h.built()).toBe(2);
    expect(h.stream.size).toBe(3);
  });

  it('keeps no timer while nobody listens, and starts again with the next reader', async () => {
    const h = await harness();
    expect(h.clock.pendingTimers).toBe(0);
    const r = await open(h.port);
    await r.events(1);
    expect(h.clock.pendingTimers).toBe(1);
    r.close();
    await until('the stream to close', () => h.stream.size === 0);
    h.clock.advance(1_000);
    expect(h.clock.pendingTimers).toBe(0);
    const built = h.built();
    h.clock.advance(10_000);
    expect(h.built()).toBe(built);
    const again = await open(h.port);
    await again.events(1);
    expect(h.clock.pendingTimers).toBe(1);
  });

  it('refuses readers past maxStreams with 503, Retry-After and a JSON error; a closed stream frees its place', async () => {
    const h = await harness(undefined, { maxStreams: 2 });
    const a = await open(h.port);
    const b = await open(h.port);
    await a.events(1);
    await b.events(1);
    const refused = await open(h.port);
    expect(refused.res.statusCode).toBe(503);
    expect(refused.res.headers['content-type']).toBe('application/json');
    expect(refused.res.headers['retry-after']).toBe('5');
    await refused.ended;
    expect(JSON.parse(refused.text())).toEqual({ error: 'RESOURCE_EXHAUSTED', message: 'at most 2 event streams may be open at once; try again later' });
    a.close();
    await until('a place to free up', () => h.stream.size === 1);
    const c = await open(h.port);
    expect(c.res.statusCode).toBe(200);
  });

  it('holds at most one snapshot for a reader that does not read, skips the rest, and closes it after stallMs', async () => {
    // Big snapshots fill the socket's buffers quickly.
    const big = 'x'.repeat(1_000_000);
    const h = await harness(() => ({ big }));
    const slow = await open(h.port);
    slow.res.pause();
    const fast = await open(h.port);
    await fast.events(1);
    const server = h.responses[0]!;
    let most = 0;
    for (let i = 0; i < 20; i++) {
      h.clock.advance(1_000);
      // The reader that reads gets every snapshot (one tick waits for it to arrive).
      await fast.events(i + 2);
      most = Math.max(most, server.writableLength);
    }
    // What waits in the server's buffer never exceeds one snapshot (plus its framing).
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThan(1_000_200);
    expect(h.stream.size).toBe(2);
    // The slow one is dropped once stalled for stallMs.
    for (let i = 0; i < DEFAULT_EVENT_STALL_MS / 1_000 + 5 && h.stream.size > 1; i++) {
      h.clock.advance(1_000);
      await fast.events(22 + i);
    }
    expect(h.stream.size).toBe(1);
    expect(server.destroyed).toBe(true);
  });

  it('sends a failure event when the snapshot cannot be built, and goes on', async () => {
    let fail = true;
    const h = await harness(() => {
      if (fail) throw new Error('registry on fire');
      return { ok: true };
    });
    const r = await open(h.port);
    expect(await r.events(1)).toEqual([{ id: '1', event: 'failure', data: '{"message":"the snapshot could not be built: registry on fire"}' }]);
    fail = false;
    h.clock.advance(1_000);
    expect((await r.events(2))[1]).toEqual({ id: '2', event: 'snapshot', data: '{"ok":true}' });
  });

  it('close() ends every stream and the ticks', async () => {
    const h = await harness();
    const r = await open(h.port);
    await r.events(1);
    h.stream.close();
    await r.ended;
    expect(h.stream.size).toBe(0);
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('refuses options that are not positive numbers', () => {
    const clock = new FakeClock();
    for (const bad of [{ intervalMs: 0 }, { maxStreams: -1 }, { stallMs: Number.NaN }]) {
      expect(() => new EventStream(() => ({}), clock, bad)).toThrow(RangeError);
    }
  });
});
