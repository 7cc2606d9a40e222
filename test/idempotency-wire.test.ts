// How a gateway tells clients whether a function is idempotent, and refuses a call that
// assumed it wrongly: on a session (SessionFunction, assume_idempotent) and on the
// per-call methods (the easyremote-idempotent response header, the
// x-easyremote-assume-idempotent request header); and the TypeScript client's use of it
// when two gateways disagree.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import type { Gateway } from '@easyremote/gateway';
import { encodeArgs } from '@easyremote/protocol';
import type { ComputeNode } from '@easyremote/node';
import { startGateway, startNode } from './support/cluster.js';
import { idempotencyRpc } from './support/idempotency-rpc.js';
import { RawSession } from './support/raw.js';

describe('idempotency on the wire', () => {
  let relaxed: Gateway;
  let strict: Gateway;
  let node: ComputeNode;

  beforeAll(async () => {
    relaxed = await startGateway({ startupGraceMs: 0 });
    // The same node's declaration, overridden by this gateway's configuration.
    strict = await startGateway({ startupGraceMs: 0, functions: { idem: { idempotent: false } } });
    node = await startNode(relaxed.address, (n) => {
      n.register('idem', (x: number) => x + 1, { idempotent: true });
      n.register('once', (x: number) => x + 1);
      n.register('count', async function* (k: number) {
        for (let i = 0; i < k; i++) yield i;
      }, { idempotent: true });
    }, { gateways: [strict.address], nodeId: 'wire-node' });
  });

  afterAll(async () => {
    await node.stop();
    await Promise.all([relaxed.stop(), strict.stop()]);
  });

  it('a session is told once per function, before the call’s other frames', async () => {
    const s = new RawSession(relaxed.address);
    s.send({ call: { callId: 1, function: 'idem', args: encodeArgs([1]) } });
    s.send({ call: { callId: 2, function: 'once', args: encodeArgs([1]) } });
    await s.until('two results', () => s.frames.filter((f) => f.result).length === 2);
    s.send({ call: { callId: 3, function: 'idem', args: encodeArgs([2]) } });
    await s.until('a third result', () => s.frames.filter((f) => f.result).length === 3);
    const kinds = s.frames.map((f) => (f.functionInfo ? `info:${f.functionInfo.function}:${f.functionInfo.idempotent}` : f.result ? `result:${f.result.callId}` : Object.keys(f).find((k) => f[k as keyof typeof f] !== undefined)));
    expect(kinds.indexOf('info:idem:true')).toBeLessThan(kinds.indexOf('result:1'));
    expect(kinds.indexOf('info:once:false')).toBeLessThan(kinds.indexOf('result:2'));
    expect(kinds.filter((k) => k?.startsWith('info:'))).toHaveLength(2);
    s.close();
  });

  it('a session call assuming an idempotent function that is not is refused unrun: SessionFunction then IDEMPOTENCY_MISMATCH', async () => {
    const s = new RawSession(strict.address);
    s.send({ call: { callId: 7, function: 'idem', args: encodeArgs([1]), assumeIdempotent: true } });
    await s.until('an error', () => s.frames.some((f) => f.error));
    expect(s.frames.map((f) => f.functionInfo ?? f.error)).toEqual([
      { function: 'idem', idempotent: false },
      { callId: 7, error: expect.objectContaining({ code: 'IDEMPOTENCY_MISMATCH', retryable: true, message: 'idem is not idempotent on this gateway; the call was not run: send it again without assuming it is' }) },
    ]);
    // The same assumption about a function that is idempotent: it runs.
    const r = new RawSession(relaxed.address);
    r.send({ call: { callId: 1, function: 'idem', args: encodeArgs([1]), assumeIdempotent: true } });
    await r.until('a result', () => r.frames.some((f) => f.result));
    s.close();
    r.close();
  });

  it('Call and CallStream answer with the easyremote-idempotent header first, and refuse a wrong assumption', async () => {
    const client = new grpc.Client(relaxed.address, grpc.credentials.createInsecure());
    const strictClient = new grpc.Client(strict.address, grpc.credentials.createInsecure());
    /** One RPC: the easyremote-idempotent header it got, and how it ended. */
    const rpc = (on: grpc.Client, method: 'Call' | 'CallStream', fn: string, assume = false) => idempotencyRpc(on, method, { function: fn, args: encodeArgs([2]), options: undefined }, assume);
    for (const method of ['Call', 'CallStream'] as const) {
      expect(await rpc(client, method, 'idem')).toEqual({ header: '1', status: grpc.status.OK, code: undefined });
      expect(await rpc(client, method, 'once')).toEqual({ header: '0', status: grpc.status.OK, code: undefined });
      expect(await rpc(client, method, 'once', true)).toEqual({ header: '0', status: grpc.status.FAILED_PRECONDITION, code: 'IDEMPOTENCY_MISMATCH' });
      expect(await rpc(strictClient, method, 'idem', true)).toEqual({ header: '0', status: grpc.status.FAILED_PRECONDITION, code: 'IDEMPOTENCY_MISMATCH' });
      // An unknown function: refused before any header.
      expect(await rpc(client, method, 'nope')).toMatchObject({ header: undefined, code: 'FUNCTION_NOT_FOUND' });
    }
    expect(await rpc(client, 'CallStream', 'count', true)).toEqual({ header: '1', status: grpc.status.OK, code: undefined });
    client.close();
    strictClient.close();
  });

  it('the client resends a call refused for a wrong assumption, on either transport, and it runs', async () => {
    for (const transport of ['session', 'unary'] as const) {
      // The relaxed gateway says idem is idempotent; the strict one refuses calls that assume it.
      const both = connect([strict.address, relaxed.address], { transport });
      for (let i = 0; i < 12; i++) expect(await both.idem(i)).toBe(i + 1);
      both.close();
    }
    const refusals = strict.api.metrics().live.functions.find((f) => f.functionName === 'idem')?.errors ?? 0;
    expect(refusals).toBeGreaterThanOrEqual(2);
  });
});
