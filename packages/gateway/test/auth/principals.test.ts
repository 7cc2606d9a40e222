import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/auth/authenticator.js';
import { PrincipalLimits } from '../../src/auth/principal-limits.js';
import { ANONYMOUS, Principal } from '../../src/auth/principals.js';
import { FakeClock } from '../support/fake-clock.js';

const bearer = (t: string) => `Bearer ${t}`;

describe('Authenticator', () => {
  const auth = new Authenticator({
    principals: [
      { name: 'fleet', token: 'fleet-token-1', role: 'node', nodeIds: ['gpu-*', 'exact'] },
      { name: 'tenant', sha256: createHash('sha256').update('tenant-token-1').digest('hex'), role: 'client', functions: ['train_*'] },
      { name: 'ops', token: 'ops-token-123', role: 'admin' },
    ],
    clientTokens: ['legacy-client-1'],
  });

  it('resolves tokens, or their configured digests, to principals by role', () => {
    expect(auth.client(bearer('tenant-token-1'))).toMatchObject({ name: 'tenant', role: 'client' });
    expect(auth.client(bearer('ops-token-123'))).toMatchObject({ name: 'ops', role: 'admin' });
    expect(auth.client(bearer('legacy-client-1'))).toMatchObject({ name: 'client-1', role: 'client' });
    expect(auth.nodeStream(bearer('fleet-token-1'))).toMatchObject({ name: 'fleet', role: 'node' });
  });

  it('refuses missing and wrong tokens, and tokens of the wrong role', () => {
    expect(auth.client(undefined)).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(auth.client(bearer('nope-nope-nope'))).toMatchObject({ code: 'UNAUTHENTICATED', message: 'client token not accepted' });
    expect(auth.client(bearer('fleet-token-1'))).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(auth.nodeStream(bearer('tenant-token-1'))).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(auth.nodeStream(undefined)).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('a register frame token must be the stream principal’s own', () => {
    const fleet = auth.nodeStream(bearer('fleet-token-1')) as Principal;
    expect(auth.registerToken('', fleet)).toBeUndefined();
    expect(auth.registerToken('fleet-token-1', fleet)).toBeUndefined();
    expect(auth.registerToken('ops-token-123', fleet)).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('patterns bind node ids and functions', () => {
    const fleet = auth.principal('fleet')!;
    expect(['gpu-1', 'gpu-', 'exact'].map(fleet.mayRegister)).toEqual([true, true, true]);
    expect(['cpu-1', 'xgpu-1', 'exact2', 'gpu'].map(fleet.mayRegister)).toEqual([false, false, false, false]);
    const tenant = auth.principal('tenant')!;
    expect(['train_model', 'train_'].map(tenant.mayCall)).toEqual([true, true]);
    expect(['predict', 'xtrain_a'].map(tenant.mayCall)).toEqual([false, false]);
    expect(auth.principal('ops')!.mayCall('anything')).toBe(true);
    expect([tenant.mayOperate, auth.principal('ops')!.mayOperate]).toEqual([false, true]);
  });

  it('without principals of a side, that side is open (the anonymous principal)', () => {
    const open = new Authenticator({});
    expect(open.client(undefined)).toBe(ANONYMOUS);
    expect(open.nodeStream(undefined)).toBe(ANONYMOUS);
    expect(open.complete).toBe(false);
    const nodesOnly = new Authenticator({ nodeTokens: ['node-token-1'] });
    expect(nodesOnly.client(undefined)).toBe(ANONYMOUS);
    expect(nodesOnly.nodeStream(undefined)).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses bad configuration with the entry named', () => {
    expect(() => new Authenticator({ principals: [{ name: 'a', token: 'short', role: 'client' }] })).toThrow(/auth.principals\[0\] \(a\): token must be a string of at least 8 characters/);
    expect(() => new Authenticator({ principals: [{ name: 'a', role: 'client' }] })).toThrow(/exactly one of token and sha256/);
    expect(() => new Authenticator({ principals: [{ name: 'a', sha256: 'abc', role: 'client' }] })).toThrow(/64 hex digits/);
    expect(() => new Authenticator({ principals: [{ name: 'a', token: 'token-aaaa', role: 'root' as 'admin' }] })).toThrow(/role must be/);
    expect(() => new Authenticator({ principals: [{ name: 'a', token: 'token-aaaa', role: 'client' }, { name: 'a', token: 'token-bbbb', role: 'client' }] })).toThrow(/used twice/);
    expect(() => new Authenticator({ principals: [{ name: 'a', token: 'token-aaaa', role: 'client' }, { name: 'b', token: 'token-aaaa', role: 'admin' }] })).toThrow(/same token/);
    expect(() => new Authenticator({ principals: [{ name: 'a', token: 'token-aaaa', role: 'client', maxConcurrent: 0 }] })).toThrow(/maxConcurrent must be a number > 0/);
  });
});

describe('PrincipalLimits', () => {
  it('bounds calls in flight, freeing a slot when one finishes', () => {
    const limits = new PrincipalLimits(new FakeClock());
    const p = new Principal('t', 'client', { maxConcurrent: 2 });
    expect(limits.acquire(p)).toBeUndefined();
    expect(limits.acquire(p)).toBeUndefined();
    expect(limits.acquire(p)).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 100, limit: { name: 'principal_max_concurrent', limit: 2, actual: 3 } });
    limits.release(p);
    expect(limits.acquire(p)).toBeUndefined();
    expect(limits.inFlight(p)).toBe(2);
  });

  it('bounds calls per second with a one-second burst, refilling with time, and names when to retry', () => {
    const clock = new FakeClock();
    const limits = new PrincipalLimits(clock);
    const p = new Principal('t', 'client', { callsPerSecond: 4 });
    for (let i = 0; i < 4; i++) expect(limits.acquire(p)).toBeUndefined();
    const refused = limits.acquire(p);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', limit: { name: 'principal_calls_per_second', limit: 4 } });
    expect(refused!.retryAfterMs).toBe(250);
    clock.advance(249);
    expect(limits.acquire(p)).toMatchObject({ code: 'RATE_LIMITED' });
    clock.advance(2);
    expect(limits.acquire(p)).toBeUndefined();
    // A long pause refills no more than one second's worth.
    clock.advance(60_000);
    for (let i = 0; i < 4; i++) expect(limits.acquire(p)).toBeUndefined();
    expect(limits.acquire(p)).toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('unlimited principals take no slot at all', () => {
    const limits = new PrincipalLimits(new FakeClock());
    const p = new Principal('free', 'client');
    for (let i = 0; i < 1000; i++) expect(limits.acquire(p)).toBeUndefined();
    expect(limits.inFlight(p)).toBe(0);
  });
});
