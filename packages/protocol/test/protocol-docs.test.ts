// proto/README.md, session.md and node-link.md are what clients and nodes in other
// languages are written from: their error catalogue, limits and byte examples are checked
// against the code here, so the documents and the code may not drift apart.
import { readFileSync } from 'node:fs';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { encode, encodeArgs } from '../src/codec.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_STREAM_CREDIT, ENVELOPE_SLACK_BYTES, HTTP2_WINDOW_BYTES, PAYLOAD_PART_BYTES, PAYLOAD_PART_CREDIT, SAFE_PART_BYTES } from '../src/constants.js';
import { ERROR_CODES } from '../src/errors.js';
import { MAX_BATCH_BYTES, MAX_BATCH_FRAMES, SOLO_FRAME_BYTES } from '../src/frame-batcher.js';
import * as limits from '../src/limits.js';
import { ClientFrame, ServerFrame } from '../src/generated/easyremote/v1/gateway.js';
import { GatewayFrame, NodeFrame } from '../src/generated/easyremote/v1/node.js';
import { BackendInfo, BackendLease, BackendRequest, LoadReport, Outcome } from '../src/generated/easyremote/v1/lookaside.js';

const read = (name: string) => readFileSync(new URL(`../../../proto/${name}`, import.meta.url), 'utf8');
const README = read('README.md');

/** The body rows of every table in a section (from its heading to the next of the same level), as cells without backticks. */
function tableRows(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no section ${heading}`);
  const level = heading.split(' ')[0]!;
  const rest = markdown.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`^${level} `, 'm'));
  return (end < 0 ? rest : rest.slice(0, end))
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
    .map((l) => l.slice(2, -2).split(' | ').map((c) => c.trim()))
    .filter((cells) => cells[0] !== 'code' && cells[0] !== 'limit_name' && cells[0] !== 'constant');
}

const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex').replace(/(..)(?!$)/g, '$1 ');

describe('proto/README.md', () => {
  it('lists every catalogue error with its gRPC status and retryable flag, and nothing else', () => {
    const rows = tableRows(README, '## Errors').filter((cells) => cells.length === 4);
    const documented = Object.fromEntries(rows.map(([code, status, retryable]) => [code!.replaceAll('`', ''), { status, retryable }]));
    const expected = Object.fromEntries(
      Object.entries(ERROR_CODES).map(([code, info]) => [code, { status: `${GrpcStatus[info.status]} (${info.status})`, retryable: info.retryable ? 'yes' : 'no' }]),
    );
    expect(documented).toEqual(expected);
  });

  it('states every protocol limit with its name and value', () => {
    const rows = tableRows(README, '## Limits');
    const documented = new Map<string, number>();
    for (const [names, values] of rows) {
      const ns = names!.split(', ').map((n) => n.replaceAll('`', ''));
      const vs = values!.split(' (')[0]!.split(', ').map(Number);
      if (ns.length !== vs.length) throw new Error(`row ${names} has ${ns.length} names and ${vs.length} values`);
      ns.forEach((n, i) => {
        if (documented.has(n) && documented.get(n) !== vs[i]) throw new Error(`${n} is documented as ${documented.get(n)} and ${vs[i]}`);
        documented.set(n, vs[i]!);
      });
    }
    const expected: Record<string, number> = {
      max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
      max_call_function_name_bytes: limits.MAX_CALL_FUNCTION_NAME_BYTES,
      max_metadata_entries: limits.MAX_METADATA_ENTRIES,
      max_metadata_bytes: limits.MAX_METADATA_BYTES,
      max_affinity_key_bytes: limits.MAX_AFFINITY_KEY_BYTES,
      max_option_string_bytes: limits.MAX_OPTION_STRING_BYTES,
      max_requirements: limits.MAX_REQUIREMENTS,
      max_functions_per_node: limits.MAX_FUNCTIONS_PER_NODE,
      max_load_balancing_json_bytes: limits.MAX_LOAD_BALANCING_JSON_BYTES,
      max_option_depth: limits.MAX_OPTION_DEPTH,
      max_labels: limits.MAX_LABELS,
      max_label_key_bytes: limits.MAX_LABEL_KEY_BYTES,
      max_label_value_bytes: limits.MAX_LABEL_VALUE_BYTES,
      max_gpus_per_node: limits.MAX_GPUS_PER_NODE,
      max_tags: limits.MAX_TAGS,
      max_tag_bytes: limits.MAX_TAG_BYTES,
      max_description_bytes: limits.MAX_DESCRIPTION_BYTES,
      max_identifier_bytes: limits.MAX_IDENTIFIER_BYTES,
      max_gateway_links: limits.MAX_GATEWAY_LINKS,
      max_address_bytes: limits.MAX_ADDRESS_BYTES,
      max_backends: limits.MAX_BACKENDS,
      max_picks_per_request: limits.MAX_PICKS_PER_REQUEST,
      max_open_picks: limits.MAX_OPEN_PICKS,
      MAX_ERROR_MESSAGE_CHARS: limits.MAX_ERROR_MESSAGE_CHARS,
      MAX_ERROR_STACK_CHARS: limits.MAX_ERROR_STACK_CHARS,
      MAX_QUOTED_CHARS: limits.MAX_QUOTED_CHARS,
      PAYLOAD_PART_BYTES,
      SAFE_PART_BYTES,
      PAYLOAD_PART_CREDIT,
      DEFAULT_STREAM_CREDIT,
      MAX_BATCH_FRAMES,
      MAX_BATCH_BYTES,
      SOLO_FRAME_BYTES,
      HTTP2_WINDOW_BYTES,
    };
    for (const [name, value] of Object.entries(expected)) expect([name, documented.get(name)]).toEqual([name, value]);
    // Every MAX_ constant of limits.ts is documented somewhere in the section.
    const limitConstants = Object.keys(limits).filter((k) => k.startsWith('MAX_'));
    for (const k of limitConstants) expect(Object.values(expected)).toContain((limits as unknown as Record<string, number>)[k]);
  });

  it("the Python snippet's message limit is the default payload limit plus the envelope", () => {
    const line = README.split('\n').find((l) => l.startsWith('limit = '))!;
    const value = new Function(`return ${line.slice('limit = '.length).split('#')[0]}`)() as number;
    expect(value).toBe(DEFAULT_MAX_PAYLOAD_BYTES + ENVELOPE_SLACK_BYTES);
  });

  it('the args example is what the codec writes', () => {
    expect(README).toContain(`\`f(1, "a")\` → \`msgpack([1, "a"])\` = \`${hexOf(encodeArgs([1, 'a']))}\``);
  });
});

describe('byte examples of session.md, node-link.md and the LoadBalancer section', () => {
  const examples: Array<[string, Uint8Array]> = [
    ['session.md', ClientFrame.encode(ClientFrame.fromPartial({ call: { callId: 1, function: 'add', args: encodeArgs([1, 2]) } })).finish()],
    ['session.md', ServerFrame.encode(ServerFrame.fromPartial({ result: { callId: 1, result: encode(3), nodeId: 'n1' } })).finish()],
    ['session.md', ClientFrame.encode(ClientFrame.fromPartial({ credit: { callId: 1, chunks: 8 } })).finish()],
    ['node-link.md', NodeFrame.encode(NodeFrame.fromPartial({ register: { nodeId: 'n1', functions: [{ name: 'add', kind: 'unary' }], protocolVersion: 1, instanceId: 'i1' } })).finish()],
    [
      'node-link.md',
      GatewayFrame.encode(
        GatewayFrame.fromPartial({ invoke: { attemptId: 7, callId: 3, attempt: 1, function: 'add', args: encodeArgs([1, 2]), deadlineUnixMs: 1_700_000_000_000, initialCredit: 16, portableResult: true } }),
      ).finish(),
    ],
    ['node-link.md', NodeFrame.encode(NodeFrame.fromPartial({ result: { attemptId: 7, payload: encode(3) } })).finish()],
    ['node-link.md', NodeFrame.encode(NodeFrame.fromPartial({ pong: { nonce: 123_456_789 } })).finish()],
    [
      'node-link.md',
      NodeFrame.encode(
        NodeFrame.fromPartial({
          heartbeat: {
            functions: [{ name: 'add', inFlight: 2, queued: 1 }],
            gateways: [
              { address: 'gw-a:1', registered: true, thisLink: true },
              { address: 'gw-b:1', gatewayId: 'B' },
            ],
          },
        }),
      ).finish(),
    ],
    ['node-link.md', GatewayFrame.encode(GatewayFrame.fromPartial({ goaway: { reason: 'stop' } })).finish()],
    ['node-link.md', NodeFrame.encode(NodeFrame.fromPartial({ register: { nodeId: 'n1', gateways: [{ address: 'gw-a:1', thisLink: true }], directAddress: '10.0.0.7:7001' } })).finish()],
    ['session.md', ClientFrame.encode(ClientFrame.fromPartial({ call: { callId: 1, function: 'add', args: encodeArgs([1, 2]), assumeIdempotent: true } })).finish()],
    ['session.md', ServerFrame.encode(ServerFrame.fromPartial({ functionInfo: { function: 'add', idempotent: true } })).finish()],
    ['README.md', BackendInfo.encode(BackendInfo.fromPartial({ id: 'b1', address: '10.0.0.7', port: 7001, load: 0.5, services: ['resize'], capacity: 1 })).finish()],
    ['README.md', BackendLease.encode(BackendLease.fromPartial({ leaseMs: 3000, reportIntervalMs: 1000, gatewayId: 'g1' })).finish()],
    ['README.md', LoadReport.encode(LoadReport.fromPartial({ id: 'b1', load: 0.25, inFlight: 1 })).finish()],
    ['README.md', BackendRequest.encode(BackendRequest.fromPartial({ service: 'resize' })).finish()],
    ['README.md', Outcome.encode(Outcome.fromPartial({ backendId: 'b1', service: 'resize', latencyMs: 12.5, ok: true, pickId: 7 })).finish()],
  ];
  it.each(examples.map(([doc, bytes], i) => [i + 1, doc, hexOf(bytes)]))('example %i of %s: %s', (_i, doc, hex) => {
    expect(read(doc)).toContain(`\`${hex}\``);
  });
});
