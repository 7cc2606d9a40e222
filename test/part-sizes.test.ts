// Large payloads travel in parts sized to the receiver's payload limit (proto/session.md,
// "Arguments in parts"; proto/node-link.md, `result_part`): a session's response headers
// name the server's limit, the TypeScript client sizes its argument parts by it, and a
// node sizes its result parts by the limit its gateway named at registration. A part is
// never larger than that limit, so it always fits the receiver's message limit.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@easyremote/client';
import {
  encodeArgs,
  encodeResult,
  MAX_PAYLOAD_HEADER_KEY,
  PAYLOAD_PART_BYTES,
  partBytesWithin,
  SAFE_PART_BYTES,
  type GatewayFrame,
  type ServerFrame,
} from '@easyremote/protocol';
import { startGateway, startNode } from './support/cluster.js';
import { RawNode, RawSession, spec } from './support/raw.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const flat = (frames: readonly GatewayFrame[]) => frames.flatMap((f) => (f.batch ? f.batch.frames : [f]));

describe('partBytesWithin', () => {
  it('is 256 KiB, or the limit when smaller, and never below 60 KiB', () => {
    expect([PAYLOAD_PART_BYTES, SAFE_PART_BYTES]).toEqual([262_144, 61_440]);
    expect(partBytesWithin(undefined)).toBe(61_440);
    expect(partBytesWithin(0)).toBe(61_440);
    expect(partBytesWithin(10_000)).toBe(61_440);
    expect(partBytesWithin(100_000)).toBe(100_000);
    expect(partBytesWithin(64 * 2 ** 20)).toBe(262_144);
    expect(partBytesWithin(Number.NaN)).toBe(61_440);
  });
});

describe("the Session RPC's headers name the server's payload limit", () => {
  it('from a gateway', async () => {
    const gw = await startGateway({ maxPayloadBytes: 300_000 });
    const raw = new RawSession(gw.address);
    cleanups.push(() => gw.stop(), () => raw.close());
    await raw.until('headers', () => raw.headers !== undefined);
    expect(raw.headers!.get(MAX_PAYLOAD_HEADER_KEY)).toEqual(['300000']);
  });

  it("from a node's direct server", async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    const node = await startNode(gw.address, (n) => n.register('f', () => 1), { nodeId: 'direct-limit', telemetry: false, direct: { listen: '127.0.0.1:0', maxPayloadBytes: 2 ** 20 } });
    cleanups.push(() => node.stop());
    const raw = new RawSession(node.directAddress!);
    cleanups.push(() => raw.close());
    await raw.until('headers', () => raw.headers !== undefined);
    expect(raw.headers!.get(MAX_PAYLOAD_HEADER_KEY)).toEqual(['1048576']);
  });
});

/** A raw node serving `sink`: records the sizes of the argument parts of each call and answers its length. */
async function sinkNode(address: string, nodeId: string) {
  const node = new RawNode(address);
  cleanups.push(() => node.close());
  expect((await node.register(nodeId, [spec('sink')])).accepted).toBe(true);
  const calls = new Map<number, { first: number; argsSize: number; parts: number[] }>();
  let seen = 0;
  const serve = setInterval(() => {
    const frames = flat(node.frames);
    for (const f of frames.slice(seen)) {
      if (f.invoke) {
        const { attemptId, args, argsSize } = f.invoke;
        calls.set(attemptId, { first: args.length, argsSize, parts: [] });
        if (argsSize <= args.length) node.send({ result: { attemptId, payload: encodeResult(args.length, 'full'), execMs: 1 } });
      }
      if (f.argsPart) {
        const call = calls.get(f.argsPart.attemptId)!;
        call.parts.push(f.argsPart.data.length);
        const got = call.first + call.parts.reduce((a, b) => a + b, 0);
        if (got >= call.argsSize) node.send({ result: { attemptId: f.argsPart.attemptId, payload: encodeResult(got, 'full'), execMs: 1 } });
      }
    }
    seen = frames.length;
  }, 5);
  cleanups.push(() => clearInterval(serve));
  return calls;
}

describe('argument parts from the TypeScript client', () => {
  it('are 256 KiB to a gateway with the default limit', async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    const calls = await sinkNode(gw.address, 'sink-default');
    const client = new Client(gw.address);
    cleanups.push(() => client.close());
    await client.call('sink', [1]); // the session's headers have come
    const args = encodeArgs([Buffer.alloc(2 ** 20)]);
    expect(await client.call('sink', [Buffer.alloc(2 ** 20)])).toBe(args.length);
    const big = [...calls.values()].find((c) => c.argsSize > 0)!;
    expect(big).toEqual({ first: 262_144, argsSize: args.length, parts: [262_144, 262_144, 262_144, args.length - 3 * 262_144 - 262_144] });
  });

  it('are at most a smaller limit; arguments within it go whole, and arguments over it are refused without ending the session', async () => {
    const gw = await startGateway({ maxPayloadBytes: 100_000 });
    cleanups.push(() => gw.stop());
    const calls = await sinkNode(gw.address, 'sink-small');
    const client = new Client(gw.address);
    cleanups.push(() => client.close());
    await client.call('sink', [1]);
    // 90 KB: more than the 60 KiB a client sends before it knows the limit, so one message now.
    expect(await client.call('sink', [Buffer.alloc(90_000)])).toBe(encodeArgs([Buffer.alloc(90_000)]).length);
    expect([...calls.values()].every((c) => c.argsSize === 0 && c.parts.length === 0)).toBe(true);
    await expect(client.call('sink', [Buffer.alloc(300_000)])).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE', limit: { name: 'max_payload_bytes', limit: 100_000 } });
    expect(await client.call('sink', [2])).toBe(encodeArgs([2]).length);
  });

  it('are 60 KiB to a gateway whose limit is below that, so even the refused call fits its message limit', async () => {
    const gw = await startGateway({ maxPayloadBytes: 10_000 });
    cleanups.push(() => gw.stop());
    await sinkNode(gw.address, 'sink-tiny');
    const client = new Client(gw.address);
    cleanups.push(() => client.close());
    await client.call('sink', [1]);
    await expect(client.call('sink', [Buffer.alloc(500_000)])).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE', limit: { name: 'max_payload_bytes', limit: 10_000 } });
    expect(await client.call('sink', [2])).toBe(encodeArgs([2]).length);
  });
});

describe('result parts from the TypeScript node', () => {
  /** Calls `blob(n)` on a raw session and returns the sizes of the result parts and of the result frame. */
  async function resultShape(address: string, n: number, callId: number, raw: RawSession) {
    const from = raw.frames.length;
    raw.send({ call: { callId, function: 'blob', args: encodeArgs([n]) } });
    const mine = () => raw.frames.slice(from).filter((f: ServerFrame) => (f.resultPart?.callId ?? f.result?.callId ?? f.error?.callId) === callId);
    await raw.until(`the result of call ${callId}`, () => mine().some((f) => f.result !== undefined || f.error !== undefined));
    const frames = mine();
    expect(frames.find((f) => f.error)?.error).toBeUndefined();
    return { parts: frames.filter((f) => f.resultPart).map((f) => f.resultPart!.data.length), last: frames.find((f) => f.result)!.result!.result.length };
  }

  it('are 256 KiB under the default limit, and none for a result within a smaller limit', async () => {
    const blob = (n: number) => Buffer.alloc(n, 7);
    const big = await startGateway();
    const small = await startGateway({ maxPayloadBytes: 200_000 });
    cleanups.push(() => big.stop(), () => small.stop());
    for (const [gw, id] of [[big, 'blob-big'], [small, 'blob-small']] as const) {
      const node = await startNode(gw.address, (n) => n.register('blob', blob), { nodeId: id, telemetry: false });
      cleanups.push(() => node.stop());
    }
    const rawBig = new RawSession(big.address);
    const rawSmall = new RawSession(small.address);
    cleanups.push(() => rawBig.close(), () => rawSmall.close());

    const whole = encodeResult(blob(600_000), 'full').length;
    expect(await resultShape(big.address, 600_000, 1, rawBig)).toEqual({ parts: [262_144, 262_144], last: whole - 2 * 262_144 });
    // 150 KB: three parts of 60 KiB before parts followed the limit; within this gateway's 200,000 bytes, so one frame now.
    expect(await resultShape(small.address, 150_000, 1, rawSmall)).toEqual({ parts: [], last: encodeResult(blob(150_000), 'full').length });
  });
});

describe('large arguments and results are taken when the call starts and when the handler returns', () => {
  const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  it('changing a Buffer argument after the call started, or a returned Buffer after the handler returned, changes nothing that travels', async () => {
    const gw = await startGateway();
    cleanups.push(() => gw.stop());
    const node = await startNode(
      gw.address,
      (n) => {
        n.register('digest', (b: Buffer) => digest(b));
        n.register('give', (size: number) => {
          const b = Buffer.alloc(size, 9);
          // After the handler returned: its parts are still on their way to the caller.
          setImmediate(() => b.fill(1));
          return b;
        });
      },
      { nodeId: 'copies', telemetry: false },
    );
    cleanups.push(() => node.stop());
    const client = new Client(gw.address);
    cleanups.push(() => client.close());

    const size = 3 * 2 ** 20 + 5;
    const arg = Buffer.alloc(size, 7);
    const expected = digest(arg);
    const pending = client.call<string>('digest', [arg]);
    arg.fill(0); // the call's 12 parts have not been sent yet
    expect(await pending).toBe(expected);

    const got = await client.call<Buffer>('give', [size]);
    expect(got.length).toBe(size);
    expect(digest(got)).toBe(digest(Buffer.alloc(size, 9)));
  });
});
