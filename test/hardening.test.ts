// Hostile or careless input, from a raw grpc-js client or a raw node stream: each limit is
// refused at once, naming the limit, quoting little of the input, and the gateway (and the
// connection the input came on) keeps serving everyone else.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComputeNode } from '@easyremote/node';
import type { Gateway } from '@easyremote/gateway';
import { encodeArgs, MAX_FUNCTIONS_PER_NODE, MAX_GPUS_PER_NODE, MAX_LABELS, MAX_LOAD_BALANCING_JSON_BYTES, MAX_OPTION_DEPTH, type FunctionInfo } from '@easyremote/protocol';
import { startGateway, startNode, waitFor } from './support/cluster.js';
import { field, rawCall, rawGatewayClient, RawNode, spec, varintField, type RawCallInput, type RawGatewayClient, type RawOutcome } from './support/raw.js';

let gw: Gateway;
let node: ComputeNode;
let client: RawGatewayClient;
const rawNodes: RawNode[] = [];

beforeAll(async () => {
  // No startup grace: an unknown function is refused at once (the grace is tested in hardening-gaps).
  gw = await startGateway({ startupGraceMs: 0, httpPort: 0 });
  node = await startNode(gw.address, (n) => n.register('ping', () => 'pong'), { nodeId: 'honest', telemetry: false });
  client = rawGatewayClient(gw.address);
});

afterAll(async () => {
  for (const r of rawNodes) r.close();
  client.close();
  await node.stop();
  await gw.stop();
});

function rawNode(): RawNode {
  const r = new RawNode(gw.address);
  rawNodes.push(r);
  return r;
}

const ping = () => rawCall(client, { function: 'ping' });

/** 20 calls on the same channel, together: every one answered, each well under a second. */
async function channelStillServes(): Promise<void> {
  const outcomes = await Promise.all(Array.from({ length: 20 }, ping));
  for (const o of outcomes) {
    expect(o.status).toBe(grpc.status.OK);
    expect(o.ms).toBeLessThan(1000);
  }
}

/** The longest run of one character in a text: how much of a repeated input it quotes. */
function longestRun(text: string, ch: string): number {
  let best = 0;
  let run = 0;
  for (const c of text) {
    run = c === ch ? run + 1 : 0;
    best = Math.max(best, run);
  }
  return best;
}

function expectRefusedByLimit(o: RawOutcome, limitName: string, limit: number, actual: number): void {
  expect(o.status).toBe(grpc.status.INVALID_ARGUMENT);
  expect(o.detail).toMatchObject({ code: 'INVALID_ARGUMENT', limitName, limit, actual });
  // The text names what was too long and the limit, without echoing the input.
  expect(o.detail!.message).toContain(String(limit));
  expect(o.detail!.message.length).toBeLessThan(300);
  expect(o.details.length).toBeLessThan(400);
}

describe('long inputs from a raw client', () => {
  it('a 64 KiB function name: INVALID_ARGUMENT naming max_call_function_name_bytes within 1 s, and the channel keeps serving', async () => {
    const name = 'x'.repeat(64 * 1024);
    const [huge, ...others] = await Promise.all([rawCall(client, { function: name }), ...Array.from({ length: 20 }, ping)]);
    expectRefusedByLimit(huge!, 'max_call_function_name_bytes', 256, 64 * 1024);
    expect(huge!.detail!.message).toMatch(/function name/);
    expect(longestRun(huge!.detail!.message, 'x')).toBeLessThanOrEqual(100);
    expect(huge!.ms).toBeLessThan(1000);
    for (const o of others) {
      expect(o.status).toBe(grpc.status.OK);
      expect(o.ms).toBeLessThan(1000);
    }
    await channelStillServes();
  });

  it('caller metadata over 64 entries or over 16 KiB: INVALID_ARGUMENT naming the limit', async () => {
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`x-k${i}`, 'v']));
    expectRefusedByLimit(await rawCall(client, { function: 'ping', metadata: many }), 'max_metadata_entries', 64, 65);

    const big = { 'x-a': 'a'.repeat(6000), 'x-b': 'b'.repeat(6000), 'x-c': 'c'.repeat(6000) };
    const o = await rawCall(client, { function: 'ping', metadata: big });
    expectRefusedByLimit(o, 'max_metadata_bytes', 16 * 1024, 18_009);
    for (const ch of 'abc') expect(longestRun(o.detail!.message, ch)).toBeLessThanOrEqual(100);
    await channelStillServes();
  });

  it('an oversized affinity key, in the options or in metadata: INVALID_ARGUMENT naming max_affinity_key_bytes', async () => {
    const key = 'k'.repeat(100_000);
    const inOptions = await rawCall(client, { function: 'ping', options: { affinityKey: key } });
    expectRefusedByLimit(inOptions, 'max_affinity_key_bytes', 1024, 100_000);
    expect(longestRun(inOptions.detail!.message, 'k')).toBeLessThanOrEqual(100);
    const inMetadata = await rawCall(client, { function: 'ping', metadata: { 'x-easyremote-affinity': 'k'.repeat(4000) } });
    expectRefusedByLimit(inMetadata, 'max_affinity_key_bytes', 1024, 4000);
    await channelStillServes();
  });

  it('an unknown 250-character function name: FUNCTION_NOT_FOUND at once, quoting at most 100 characters of it', async () => {
    const name = 'n'.repeat(250);
    const o = await rawCall(client, { function: name });
    expect(o.status).toBe(grpc.status.NOT_FOUND);
    expect(o.detail?.code).toBe('FUNCTION_NOT_FOUND');
    expect(longestRun(o.detail!.message, 'n')).toBe(100);
    expect(o.detail!.message).toMatch(/250 characters/);
    expect(o.detail!.message.length).toBeLessThan(200);
    expect(o.ms).toBeLessThan(1000);
  });

  it('an unknown 200-character strategy or requirement in the options: INVALID_ARGUMENT quoting at most 100 characters of it', async () => {
    const long = 's'.repeat(200);
    const cases: Array<NonNullable<RawCallInput['options']>> = [{ strategy: long }, { fallbackStrategy: long }, { requirements: { [long]: '>=1' } }, { requirements: { gpuCount: long } }, { requirements: { memory: `>=1${long}` } }];
    for (const options of cases) {
      const o = await rawCall(client, { function: 'ping', options });
      expect(o.status).toBe(grpc.status.INVALID_ARGUMENT);
      expect(longestRun(o.detail!.message, 's')).toBe(100);
      expect(o.detail!.message).toMatch(/\(20\d characters\)/);
    }
  });

  it('a 300-character name is past the 256-byte call limit: refused by the limit, not looked up', async () => {
    const o = await rawCall(client, { function: 'n'.repeat(300) });
    expectRefusedByLimit(o, 'max_call_function_name_bytes', 256, 300);
  });
});

describe('hostile declarations from a raw node', () => {
  const functionsDocument = async (): Promise<FunctionInfo[]> => {
    const res = await fetch(`http://127.0.0.1:${gw.httpPort}/api/functions`);
    expect(res.status).toBe(200);
    return (await res.json()) as FunctionInfo[];
  };

  it('100,000 functions: refused naming max_functions_per_node; the gateway keeps serving', async () => {
    const r = rawNode();
    const functions = Array.from({ length: 100_000 }, (_, i) => spec(`f${i}`));
    const answer = await r.register('hoarder', functions);
    expect(answer).toMatchObject({ accepted: false, refusal: { code: 'INVALID_ARGUMENT', limitName: 'max_functions_per_node', limit: MAX_FUNCTIONS_PER_NODE, actual: 100_000 } });
    expect(answer.refusal!.message.length).toBeLessThan(300);
    expect(gw.registry.functions.has('f0')).toBe(false);
    expect(gw.registry.sessions.has('hoarder')).toBe(false);
    await channelStillServes();
    expect((await functionsDocument()).map((f) => f.name)).toEqual(['ping']);
  });

  it('loadBalancing nested past the depth limit (within the size limit): refused naming max_option_depth; /api/functions answers', async () => {
    const r = rawNode();
    // 8,000 levels in under 16 KiB: { "x": [[[ ... ]]] }.
    const depth = 8_000;
    const deep = `{"strategy":"round_robin","x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    expect(deep.length).toBeLessThanOrEqual(MAX_LOAD_BALANCING_JSON_BYTES);
    const answer = await r.register('deep', [spec('deep_fn', { loadBalancingJson: deep })]);
    expect(answer).toMatchObject({ accepted: false, refusal: { code: 'INVALID_ARGUMENT', limitName: 'max_option_depth', limit: MAX_OPTION_DEPTH, actual: depth + 1 } });
    expect(answer.refusal!.message).toMatch(/deep_fn/);
    expect(answer.refusal!.message.length).toBeLessThan(300);
    // Just past the limit is refused too; at the limit is accepted.
    const nest = (n: number) => `{"strategy":"round_robin","x":${'['.repeat(n)}${']'.repeat(n)}}`;
    const justPast = await r.register('deep', [spec('deep_fn', { loadBalancingJson: nest(MAX_OPTION_DEPTH) })]);
    expect(justPast.refusal).toMatchObject({ limitName: 'max_option_depth', actual: MAX_OPTION_DEPTH + 1 });
    expect(await functionsDocument()).toHaveLength(1);
    await channelStillServes();
  });

  it('loadBalancing nested 100,000 deep is refused by the size limit before it is parsed', async () => {
    const r = rawNode();
    const deep = `{"x":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`;
    const answer = await r.register('deeper', [spec('deeper_fn', { loadBalancingJson: deep })]);
    expect(answer).toMatchObject({ accepted: false, refusal: { code: 'INVALID_ARGUMENT', limitName: 'max_load_balancing_json_bytes', limit: MAX_LOAD_BALANCING_JSON_BYTES } });
    expect((await functionsDocument()).map((f) => f.name)).toEqual(['ping']);
    await channelStillServes();
  });

  it('too many labels or GPUs: refused naming max_labels and max_gpus_per_node', async () => {
    const r = rawNode();
    const labels = Object.fromEntries(Array.from({ length: MAX_LABELS + 1 }, (_, i) => [`l${i}`, 'v']));
    const byLabels = await r.register('labelled', [spec('lab')], { labels });
    expect(byLabels).toMatchObject({ accepted: false, refusal: { code: 'INVALID_ARGUMENT', limitName: 'max_labels', limit: MAX_LABELS, actual: MAX_LABELS + 1 } });
    const gpus = Array.from({ length: 10_000 }, (_, index) => ({ index, model: 'H100', vramTotalBytes: 80e9 }));
    const byGpus = await r.register('gpu-farm', [spec('lab')], { gpus });
    expect(byGpus).toMatchObject({ accepted: false, refusal: { code: 'INVALID_ARGUMENT', limitName: 'max_gpus_per_node', limit: MAX_GPUS_PER_NODE, actual: 10_000 } });
    expect(gw.nodes().map((n) => n.nodeId)).toEqual(['honest']);
    await channelStillServes();
  });

  it("heartbeats naming undeclared functions do not grow the node's table at the gateway", async () => {
    const r = rawNode();
    expect((await r.register('chatty', [spec('declared_a'), spec('declared_b')])).accepted).toBe(true);
    const functions = Array.from({ length: 50_000 }, (_, i) => ({ name: `ghost${i}`, inFlight: 1, queued: 1 }));
    functions.push({ name: 'declared_a', inFlight: 0, queued: 3 });
    for (let i = 0; i < 5; i++) r.send({ heartbeat: { cpuPercent: 0, memoryUsedBytes: 0, memoryTotalBytes: 0, gpus: [], functions, hasTelemetry: false, gateways: [] } });
    // Frames on a stream are handled in order: after the drain notice, every heartbeat was.
    r.send({ drain: {} });
    await waitFor('the drain notice', () => gw.registry.sessions.get('chatty')?.state === 'draining');
    const session = gw.registry.sessions.get('chatty')!;
    expect([...session.reported.keys()]).toEqual(['declared_a']);
    expect(session.reported.get('declared_a')).toEqual({ inFlight: 0, queued: 3, elsewhere: 3 });
  });

  it('a frame with a number above 2^53 gets a rejected frame; the stream stays up and the node still serves', async () => {
    const r = rawNode();
    expect((await r.register('big-numbers', [spec('answer')])).accepted).toBe(true);
    const huge = 2n ** 60n;
    const from = r.frames.length;
    // NodeFrame.pong (8) { nonce (1): 2^60 } and NodeFrame.result (3) { attempt_id (1): 2^60 }, written by hand.
    r.sendBytes(field(8, varintField(1, huge)));
    const first = await r.next((f) => f.rejected !== undefined, 10_000, from);
    expect(first.rejected!.error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/could not be decoded.*MAX_SAFE_INTEGER/) });
    const second = r.frames.length;
    r.sendBytes(field(3, Buffer.concat([varintField(1, huge), field(2, Buffer.from([0xc0]))])));
    await r.next((f) => f.rejected !== undefined, 10_000, second);
    expect(r.status).toBeUndefined();

    // Still registered, still callable: the gateway invokes it and takes its answer.
    expect(gw.registry.sessions.get('big-numbers')?.state).toBe('active');
    const call = rawCall(client, { function: 'answer', args: encodeArgs([]) });
    const invoke = (await r.next((f) => f.invoke !== undefined)).invoke!;
    r.send({ result: { attemptId: invoke.attemptId, payload: Buffer.from([0x2a]), execMs: 1 } });
    const o = await call;
    expect(o.status).toBe(grpc.status.OK);
    expect(o.reply).toMatchObject({ nodeId: 'big-numbers', result: Buffer.from([0x2a]) });
    // And it can register again on the same stream.
    expect((await r.register('big-numbers', [spec('answer'), spec('answer2')])).accepted).toBe(true);
  });
});
