// The MessageWriter must write exactly the bytes @bufbuild/protobuf's BinaryWriter writes,
// for every message the services serialize: checked on generated frames of every kind,
// with payloads on both sides of the by-reference threshold and nested lengths on both
// sides of each varint width.
import { readdirSync, readFileSync } from 'node:fs';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CallReply, CallRequest, ClientFrame, ServerFrame, StreamReply } from '../src/generated/easyremote/v1/gateway.js';
import { GatewayFrame, NodeFrame } from '../src/generated/easyremote/v1/node.js';
import { MessageWriter, serializeMessage, serializeResponse } from '../src/message-writer.js';

const GENERATED = new URL('../src/generated/easyremote/v1/', import.meta.url);

// Lengths around the writer's by-reference threshold (1024) and the varint widths (128, 16384).
const payload = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 40 }), weight: 4 },
  { arbitrary: fc.integer({ min: 120, max: 136 }), weight: 2 },
  { arbitrary: fc.integer({ min: 1000, max: 1050 }), weight: 2 },
  { arbitrary: fc.integer({ min: 16_370, max: 16_400 }), weight: 2 },
  { arbitrary: fc.constantFrom(70_000, 2_097_160), weight: 1 },
).map((p) => (typeof p === 'number' ? Buffer.alloc(p, p & 0xff) : Buffer.from(p)));
const text = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 200 }), fc.string({ minLength: 126, maxLength: 140 }));
const u32 = fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 0xffffffff }));
const u64 = fc.oneof(fc.integer({ min: 0, max: 200 }), fc.maxSafeNat());
const metadata = fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 3 });
const errorDetail = fc.record({
  code: text, message: text, remoteName: text, remoteStack: text, retryAfterMs: u32, nodeId: text,
  retryable: fc.boolean(), limitName: text, limit: fc.double(), actual: fc.double(),
});
const callOptions = fc.record({
  strategy: text, fallbackStrategy: text, affinityKey: text, noCache: fc.boolean(), complexity: fc.double(),
  requirements: metadata, preferLocation: text, maxLatencyMs: fc.double(), maxCost: fc.double(), fullFidelity: fc.boolean(),
});

const sessionCall = fc.record({
  callId: u32, function: text, args: payload, options: fc.option(callOptions, { nil: undefined }), metadata,
  timeoutMs: u32, stream: fc.boolean(), wantProgress: fc.boolean(), initialCredit: u32, argsSize: u64, assumeIdempotent: fc.boolean(),
});
const clientLeaf = fc.oneof(
  sessionCall.map((call) => ({ call })),
  fc.record({ callId: u32 }).map((cancel) => ({ cancel })),
  fc.record({ callId: u32, chunks: u32 }).map((credit) => ({ credit })),
  fc.record({ callId: u32, data: payload }).map((argsPart) => ({ argsPart })),
);
const clientFrame = fc.oneof(clientLeaf, fc.array(clientLeaf, { maxLength: 6 }).map((frames) => ({ batch: { frames } })));

const serverLeaf = fc.oneof(
  fc.record({ callId: u32, result: payload, nodeId: text, cached: fc.boolean() }).map((result) => ({ result })),
  fc.record({ callId: u32, chunk: payload }).map((chunk) => ({ chunk })),
  fc.record({ callId: u32 }).map((end) => ({ end })),
  fc.record({ callId: u32, error: errorDetail }).map((error) => ({ error })),
  fc.record({ callId: u32, fraction: fc.double(), message: text }).map((progress) => ({ progress })),
  fc.record({ callId: u32, data: payload }).map((resultPart) => ({ resultPart })),
  fc.record({ callId: u32, parts: u32 }).map((argsCredit) => ({ argsCredit })),
  fc.record({ error: errorDetail }).map((rejected) => ({ rejected })),
  fc.record({ reason: text }).map((goaway) => ({ goaway })),
  fc.record({ function: text, idempotent: fc.boolean() }).map((functionInfo) => ({ functionInfo })),
);
const serverFrame = fc.oneof(serverLeaf, fc.array(serverLeaf, { maxLength: 6 }).map((frames) => ({ batch: { frames } })));

const linkState = fc.record({ address: text, gatewayId: text, registered: fc.boolean(), thisLink: fc.boolean() });
const nodeLeaf = fc.oneof(
  fc.record({
    nodeId: text, token: text, protocolVersion: u32, instanceId: text, directAddress: text, gateways: fc.array(linkState, { maxLength: 2 }),
    functions: fc.array(fc.record({
      name: text, kind: text, timeoutMs: u32, maxConcurrent: u32, queueSize: u32, idempotent: fc.boolean(), cacheable: fc.boolean(),
      cacheTtlMs: u32, version: text, tags: fc.array(text, { maxLength: 3 }), description: text, costPerHour: fc.double(),
      performanceTier: fc.double(), priority: fc.integer({ min: -5, max: 5 }), requirements: metadata, loadBalancingJson: text, worker: fc.boolean(),
    }), { maxLength: 3 }),
    capabilities: fc.option(fc.record({
      cpuCores: u32, memoryTotalBytes: u64, costPerHour: fc.double(), labels: metadata,
      gpus: fc.array(fc.record({ index: u32, model: text, vramTotalBytes: u64 }), { maxLength: 2 }),
    }), { nil: undefined }),
  }).map((register) => ({ register })),
  fc.record({
    cpuPercent: fc.double(), memoryUsedBytes: u64, memoryTotalBytes: u64, hasTelemetry: fc.boolean(), gateways: fc.array(linkState, { maxLength: 2 }),
    gpus: fc.array(fc.record({ index: u32, utilizationPercent: fc.double(), vramUsedBytes: u64, vramTotalBytes: u64 }), { maxLength: 3 }),
    functions: fc.array(fc.record({ name: text, inFlight: u32, queued: u32 }), { maxLength: 3 }),
  }).map((heartbeat) => ({ heartbeat })),
  fc.record({ attemptId: u32, payload, execMs: fc.double() }).map((result) => ({ result })),
  fc.record({ attemptId: u32, error: errorDetail, execMs: fc.double() }).map((error) => ({ error })),
  fc.record({ attemptId: u32, payload }).map((chunk) => ({ chunk })),
  fc.record({ attemptId: u32, execMs: fc.double() }).map((end) => ({ end })),
  fc.record({ attemptId: u32, fraction: fc.double(), message: text }).map((progress) => ({ progress })),
  fc.record({ nonce: u64 }).map((pong) => ({ pong })),
  fc.record({ attemptId: u32, data: payload }).map((resultPart) => ({ resultPart })),
);
const nodeFrame = fc.oneof(nodeLeaf, fc.array(nodeLeaf, { maxLength: 6 }).map((frames) => ({ batch: { frames } })));

const gatewayLeaf = fc.oneof(
  fc.record({
    accepted: fc.boolean(), refusal: fc.option(errorDetail, { nil: undefined }), heartbeatMs: u32, leaseMs: u32, maxPayloadBytes: u32, gatewayId: text,
  }).map((registered) => ({ registered })),
  fc.record({
    attemptId: u32, callId: u32, attempt: u32, function: text, args: payload, deadlineUnixMs: fc.double(), metadata,
    initialCredit: u32, wantProgress: fc.boolean(), portableResult: fc.boolean(), argsSize: u64, caller: text,
  }).map((invoke) => ({ invoke })),
  fc.record({ attemptId: u32, reason: text }).map((cancel) => ({ cancel })),
  fc.record({ attemptId: u32, chunks: u32 }).map((credit) => ({ credit })),
  fc.record({ nonce: u64 }).map((ping) => ({ ping })),
  fc.record({ attemptId: u32, data: payload }).map((argsPart) => ({ argsPart })),
  fc.record({ reason: text }).map((goaway) => ({ goaway })),
);
const gatewayFrame = fc.oneof(gatewayLeaf, fc.array(gatewayLeaf, { maxLength: 6 }).map((frames) => ({ batch: { frames } })));

type Fns<T> = { encode(m: T, w?: BinaryWriter): BinaryWriter; decode(b: Uint8Array): T; fromPartial(o: object): T };

function sameAsBinaryWriter<T>(type: Fns<T>, partial: object): void {
  const message = type.fromPartial(partial);
  const expected = Buffer.from(type.encode(message).finish());
  // Buffer.equals, not toEqual: a deep comparison of megabyte buffers element by element takes seconds.
  expect(serializeMessage(type, message).equals(expected)).toBe(true);
  expect(serializeResponse(type, message).equals(expected)).toBe(true);
}

describe('MessageWriter', () => {
  const cases: [string, Fns<object>, fc.Arbitrary<object>][] = [
    ['ClientFrame', ClientFrame as unknown as Fns<object>, clientFrame],
    ['ServerFrame', ServerFrame as unknown as Fns<object>, serverFrame],
    ['NodeFrame', NodeFrame as unknown as Fns<object>, nodeFrame],
    ['GatewayFrame', GatewayFrame as unknown as Fns<object>, gatewayFrame],
    ['CallRequest', CallRequest as unknown as Fns<object>, fc.record({ function: text, args: payload, options: fc.option(callOptions, { nil: undefined }) })],
    ['CallReply', CallReply as unknown as Fns<object>, fc.record({ result: payload, nodeId: text, cached: fc.boolean() })],
    ['StreamReply', StreamReply as unknown as Fns<object>, fc.oneof(payload.map((chunk) => ({ chunk })), payload.map((result) => ({ result })))],
  ];
  for (const [name, type, arbitrary] of cases) {
    it(`writes ${name} byte for byte as BinaryWriter does`, () => {
      fc.assert(fc.property(arbitrary, (partial) => sameAsBinaryWriter(type, partial)), { numRuns: 150, seed: 20261121 });
    });
  }

  it('writes a large field once, by reference, and keeps it out of its reused scratch buffer', () => {
    const data = Buffer.alloc(300_000, 7);
    const out = serializeMessage(GatewayFrame, GatewayFrame.fromPartial({ batch: { frames: [{ argsPart: { attemptId: 1, data } }, { ping: { nonce: 3 } }] } }));
    // batch(1 + 3-byte length) › frame(1 + 3) › argsPart(1 + 3) › attemptId(2) › data(1 + 3) + 300,000, then the ping frame.
    expect(out.length).toBe(4 + 4 + 4 + 2 + 4 + 300_000 + 6);
    expect(GatewayFrame.decode(out).batch!.frames[0]!.argsPart!.data.equals(data)).toBe(true);
    data.fill(8); // the message is a copy: changing the source afterwards changes nothing
    expect(GatewayFrame.decode(out).batch!.frames[0]!.argsPart!.data[0]).toBe(7);
  });

  it('writes a response into a reused buffer, valid until the next response; a very large one gets its own', () => {
    const frame = (nonce: number, data?: Buffer) => GatewayFrame.fromPartial(data ? { argsPart: { attemptId: nonce, data } } : { ping: { nonce } });
    // Small: a view of the scratch buffer, overwritten by the next response.
    const first = serializeResponse(GatewayFrame, frame(1));
    const copy = Buffer.from(first);
    serializeResponse(GatewayFrame, frame(2));
    expect(first.equals(copy)).toBe(false);
    expect(GatewayFrame.decode(copy).ping!.nonce).toBe(1);
    // With a large field: assembled in a second reused buffer, also overwritten next time.
    const large = serializeResponse(GatewayFrame, frame(3, Buffer.alloc(100_000, 3)));
    const largeCopy = Buffer.from(large);
    serializeResponse(GatewayFrame, frame(4, Buffer.alloc(100_000, 4)));
    expect(large.equals(largeCopy)).toBe(false);
    // Past the reused buffer's cap (2 MiB): a buffer of its own, left alone by what follows.
    const huge = serializeResponse(GatewayFrame, frame(5, Buffer.alloc(3 * 2 ** 20, 5)));
    serializeResponse(GatewayFrame, frame(6, Buffer.alloc(100_000, 6)));
    serializeResponse(GatewayFrame, frame(7, Buffer.alloc(3 * 2 ** 20, 7)));
    expect(GatewayFrame.decode(huge).argsPart!.data.every((b) => b === 5)).toBe(true);
    // Requests (serializeMessage) are never views: grpc-js's client may hold them.
    const request = serializeMessage(GatewayFrame, frame(8));
    serializeMessage(GatewayFrame, frame(9));
    expect(GatewayFrame.decode(request).ping!.nonce).toBe(8);
  });

  it('refuses what BinaryWriter refuses and is usable again afterwards', () => {
    const bad = [
      NodeFrame.fromPartial({ result: { attemptId: -1 } }),
      NodeFrame.fromPartial({ heartbeat: { functions: [{ name: 'f', inFlight: 2 ** 32 }] } }),
      NodeFrame.fromPartial({ pong: { nonce: -5 } }),
      NodeFrame.fromPartial({ register: { functions: [{ name: 'f', priority: 2 ** 31 }] } }),
      NodeFrame.fromPartial({ heartbeat: { memoryUsedBytes: 1.5 } }),
    ];
    for (const message of bad) {
      let expected = '';
      try {
        NodeFrame.encode(message);
      } catch (err) {
        expected = (err as Error).message;
      }
      expect(expected).not.toBe(""); // BinaryWriter refused it
      expect(() => serializeMessage(NodeFrame, message)).toThrow(expected);
    }
    const ok = NodeFrame.fromPartial({ pong: { nonce: 5 } });
    expect(serializeMessage(NodeFrame, ok).equals(Buffer.from(NodeFrame.encode(ok).finish()))).toBe(true);
  });

  it('writes negative int32 as BinaryWriter does (ten bytes)', () => {
    for (const v of [-1, -128, -(2 ** 31), 0, 127, 128, 2 ** 31 - 1]) {
      const w = new MessageWriter();
      w.int32(v);
      expect(w.finishBuffer().equals(Buffer.from(new BinaryWriter().int32(v).finish()))).toBe(true);
    }
  });

  it('has every writer method the generated encoders call', () => {
    const called = new Set<string>();
    for (const name of readdirSync(GENERATED)) {
      const source = readFileSync(new URL(name, GENERATED), 'utf8');
      // writer.uint32(18).string(…), writer.uint32(10).fork(), writer.join(), writer.double(v)
      for (const m of source.matchAll(/writer(?:\.uint32\(\d+\))?\.(\w+)\(/g)) called.add(m[1]!);
      for (const m of source.matchAll(/\)\.(fork|join)\(\)/g)) called.add(m[1]!);
    }
    expect(called.size).toBeGreaterThan(5);
    const writer = new MessageWriter() as unknown as Record<string, unknown>;
    for (const method of called) expect(typeof writer[method], method).toBe('function');
  });
});
