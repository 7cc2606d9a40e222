// The gateway's own limits and defaults as proto/README.md and proto/session.md state them
// (the protocol's are checked in packages/protocol/test/protocol-docs.test.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_SESSION_CALLS } from '../../src/api/session-service.js';
import { DEFAULT_GATEWAY_QUEUE_BYTES, DEFAULT_GATEWAY_QUEUE_SIZE } from '../../src/calls/admission-queue.js';
import { DEADLINE_MARGIN, MAX_DEADLINE_GRACE_MS } from '../../src/calls/deadline.js';
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_RETRY_COUNT } from '../../src/options.js';
import { DEFAULT_PROVIDER_GAP_MS } from '../../src/registry/registry.js';
import { RETRY_AFTER_MS } from '../../src/routing/router.js';

const read = (name: string) => readFileSync(new URL(`../../../../proto/${name}`, import.meta.url), 'utf8');
const README = read('README.md');

/** The value column of the limits table row whose first cell is `name`. */
function documented(name: string): number {
  const row = README.split('\n').find((l) => l.startsWith(`| \`${name}\` | `));
  if (row === undefined) throw new Error(`no row for ${name}`);
  return Number(row.split(' | ')[1]!.split(' (')[0]);
}

describe('the gateway limits proto/README.md states', () => {
  it('table values', () => {
    expect(documented('max_session_calls')).toBe(MAX_SESSION_CALLS);
    expect(documented('gateway_queue_size')).toBe(DEFAULT_GATEWAY_QUEUE_SIZE);
    expect(documented('gateway_queue_bytes')).toBe(DEFAULT_GATEWAY_QUEUE_BYTES);
    expect(documented('MAX_DEADLINE_GRACE_MS')).toBe(MAX_DEADLINE_GRACE_MS);
  });

  it('defaults and the deadline margin in the text', () => {
    // Line breaks read as spaces: the checks do not depend on where the text wraps.
    const text = (name: string) => read(name).replace(/\s+/g, ' ');
    const readme = text('README.md');
    expect(readme).toContain(`(\`defaultTimeoutMs\`, ${DEFAULT_CALL_TIMEOUT_MS / 1000} s)`);
    expect(readme).toContain(`\`providerGapMs\` (${DEFAULT_PROVIDER_GAP_MS / 1000} s)`);
    expect(readme).toContain(`${DEADLINE_MARGIN.share * 100}% of \`D − now\`, at least ${DEADLINE_MARGIN.minMs} ms, at most ${DEADLINE_MARGIN.maxMs} ms`);
    expect(readme).toContain(`N is capped at ${MAX_DEADLINE_GRACE_MS}`);
    expect(readme).toContain(`\`retry_after_ms\` ${RETRY_AFTER_MS}`);
    expect(text('node-link.md')).toContain(`default ${DEFAULT_RETRY_COUNT} retries`);
    expect(text('session.md')).toContain(`\`MAX_SESSION_CALLS\`: ${MAX_SESSION_CALLS.toLocaleString('en-US')} calls`);
  });
});
