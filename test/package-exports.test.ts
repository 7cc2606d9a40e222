// What a user of @easyremote/node or @easyremote/client can import without adding
// @easyremote/protocol to their own dependencies: the whole error catalogue, the very same
// classes (so `instanceof` holds whichever package a value came through).
import { describe, expect, it } from 'vitest';
import * as protocol from '@easyremote/protocol';
import * as node from '@easyremote/node';
import * as client from '@easyremote/client';

const catalogue = Object.entries(protocol).filter(
  ([, value]) => typeof value === 'function' && (value === protocol.EasyRemoteError || value.prototype instanceof protocol.EasyRemoteError),
);

describe('the error catalogue', () => {
  it('is found in @easyremote/protocol (the list below is not empty by accident)', () => {
    expect(catalogue.map(([name]) => name)).toEqual(expect.arrayContaining(['EasyRemoteError', 'RemoteError', 'InvalidArgument', 'GatewayLost']));
    expect(catalogue.length).toBeGreaterThanOrEqual(20);
  });

  for (const [name, pkg] of [
    ['@easyremote/node', node],
    ['@easyremote/client', client],
  ] as const) {
    it(`is exported whole by ${name}, as the same classes`, () => {
      const exported = pkg as unknown as Record<string, unknown>;
      const missing = catalogue.filter(([n, cls]) => exported[n] !== cls).map(([n]) => n);
      expect(missing).toEqual([]);
    });
  }

  it('InvalidArgument thrown by a handler is an EasyRemoteError with its code', () => {
    const err = new node.InvalidArgument('epochs must be positive');
    expect(err).toBeInstanceOf(client.EasyRemoteError);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.retryable).toBe(false);
  });
});
