import { describe, expect, it } from 'vitest';
import { EasyRemoteError, InvalidArgument, PermissionDenied, RateLimited, RegistrationRefused, Unauthenticated } from '@easyremote/protocol';
import { DUPLICATE_ID_FALLBACK_MS, FirstRegistration } from '../src/first-registration.js';
import { FakeClock } from './fakes.js';

function setup(connectTimeoutMs = 10_000) {
  const clock = new FakeClock();
  const gaveUp: EasyRemoteError[] = [];
  const first = new FirstRegistration({ address: 'gw.example:50051', nodeId: 'n1', connectTimeoutMs, clock, gaveUp: (e) => gaveUp.push(e) });
  let outcome: 'pending' | 'resolved' | Error = 'pending';
  first.promise.then(
    () => (outcome = 'resolved'),
    (e: Error) => (outcome = e),
  );
  const settled = async () => {
    await Promise.resolve();
    await Promise.resolve();
    return outcome;
  };
  return { clock, first, gaveUp, settled };
}

const duplicate = (retryAfterMs?: number) => new RegistrationRefused('node id n1 is already connected from ipv4:127.0.0.1:4000', { retryAfterMs });

describe('FirstRegistration: what node.start() waits for', () => {
  it('resolves on the first accepted registration; the connect timeout no longer applies', async () => {
    const { clock, first, gaveUp, settled } = setup(1000);
    first.failed('stream error: 14 UNAVAILABLE: connect ECONNREFUSED');
    clock.advance(500);
    first.registered();
    expect(await settled()).toBe('resolved');
    clock.advance(5000);
    expect(gaveUp).toEqual([]);
    expect(first.done).toBe(true);
  });

  it.each([
    ['UNAUTHENTICATED', new Unauthenticated('node token not accepted')],
    ['PERMISSION_DENIED', new PermissionDenied('nodes-a may not register node id "n1"')],
    ['INVALID_ARGUMENT', new InvalidArgument('node n1: function f: unknown strategy "nope"')],
  ])('rejects at once on %s, a refusal no retry fixes', async (code, err) => {
    const { first, settled } = setup();
    expect(first.refused(err, false)).toBe(err);
    const outcome = await settled();
    expect(outcome).toBe(err);
    expect(outcome).toMatchObject({ code });
  });

  it('a taken node id is retried until the holder would have expired if stale, then rejected', async () => {
    const { clock, first, settled } = setup(60_000);
    // The gateway says the holder's lease runs out in 3.2 s if it stays silent.
    expect(first.refused(duplicate(3200), true)).toBeUndefined();
    clock.advance(3199);
    expect(first.refused(duplicate(1), true)).toBeUndefined();
    expect(await settled()).toBe('pending');
    clock.advance(1);
    const err = first.refused(duplicate(3000), true);
    expect(err).toMatchObject({ code: 'REGISTRATION_REFUSED' });
    expect(err!.message).toBe(
      'node id n1 is already connected from ipv4:127.0.0.1:4000, still 3200 ms after the first refusal, longer than a stale session of this node would live: another node is using the id n1',
    );
    expect(await settled()).toBe(err);
  });

  it('a taken id that frees up in time (a stale session of this node expiring) ends in registration', async () => {
    const { clock, first, settled } = setup();
    first.refused(duplicate(3000), true);
    clock.advance(3100);
    first.registered();
    expect(await settled()).toBe('resolved');
  });

  it('without a retry-after from the gateway, a taken id is retried for DUPLICATE_ID_FALLBACK_MS', async () => {
    const { clock, first, settled } = setup(60_000);
    first.refused(duplicate(), true);
    clock.advance(DUPLICATE_ID_FALLBACK_MS - 1);
    expect(first.refused(duplicate(), true)).toBeUndefined();
    clock.advance(1);
    expect(first.refused(duplicate(), true)).toMatchObject({ code: 'REGISTRATION_REFUSED' });
    expect(await settled()).toBeInstanceOf(RegistrationRefused);
  });

  it('rate limiting is waited out, not a reason to give up', async () => {
    const { clock, first, settled } = setup(0);
    for (let i = 0; i < 5; i++) {
      expect(first.refused(new RateLimited('slow down', { retryAfterMs: 1000 }), true)).toBeUndefined();
      clock.advance(100_000);
    }
    expect(await settled()).toBe('pending');
  });

  it('the connect timeout rejects with GATEWAY_UNAVAILABLE naming the address, the attempts and the last failure', async () => {
    const { clock, first, gaveUp, settled } = setup(5000);
    first.failed('stream error: 14 UNAVAILABLE: No connection established');
    first.failed('stream error: 14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:50051');
    clock.advance(4999);
    expect(await settled()).toBe('pending');
    clock.advance(1);
    const outcome = await settled();
    expect(outcome).toMatchObject({ code: 'GATEWAY_UNAVAILABLE', retryable: true });
    expect((outcome as Error).message).toBe(
      'gateway gw.example:50051 unavailable: node n1 was not registered within connectTimeoutMs (5000 ms); 2 attempt(s) failed, the last with: stream error: 14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:50051',
    );
    expect(gaveUp).toEqual([outcome]);
    // Settled once: what comes later changes nothing.
    first.registered();
    expect(first.refused(new Unauthenticated('no'), false)).toBeUndefined();
    expect(await settled()).toBe(outcome);
  });

  it('a timeout while the node id is still taken says so rather than blaming the gateway', async () => {
    const { clock, first, settled } = setup(2000);
    first.refused(duplicate(3000), true);
    clock.advance(2000);
    const outcome = await settled();
    expect(outcome).toMatchObject({ code: 'REGISTRATION_REFUSED' });
    expect((outcome as Error).message).toBe('node id n1 is already connected from ipv4:127.0.0.1:4000; connectTimeoutMs (2000 ms) ran out waiting for the id n1 to be released');
  });

  it('connectTimeoutMs 0 waits as long as it takes', async () => {
    const { clock, first, settled } = setup(0);
    first.failed('stream error: 14 UNAVAILABLE');
    clock.advance(24 * 3600_000);
    expect(await settled()).toBe('pending');
    first.registered();
    expect(await settled()).toBe('resolved');
  });

  it('a node stopped before it registered rejects start()', async () => {
    const { first, settled } = setup();
    first.cancel('stopped');
    expect(await settled()).toMatchObject({ message: 'node n1 stopped before it registered' });
  });
});
