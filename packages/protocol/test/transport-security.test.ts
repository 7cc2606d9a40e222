// The identity a certificate names, and what a failure to connect says about TLS, from
// the strings Node and grpc-js actually produce.
import { describe, expect, it } from 'vitest';
import { certificateIdentity, explainConnectFailure } from '../src/transport-security.js';

describe('certificateIdentity', () => {
  it('the first DNS name, else the first URI, else the CN', () => {
    expect(certificateIdentity('URI:urn:node:b, DNS:gpu-1, DNS:gpu-2', 'cn')).toBe('gpu-1');
    expect(certificateIdentity('IP Address:10.0.0.1, URI:urn:node:b, URI:urn:node:c', 'cn')).toBe('urn:node:b');
    expect(certificateIdentity('IP Address:10.0.0.1, email:a@b.c', 'from-cn')).toBe('from-cn');
    expect(certificateIdentity(undefined, 'from-cn')).toBe('from-cn');
    expect(certificateIdentity(undefined, undefined)).toBeUndefined();
    expect(certificateIdentity('', '')).toBeUndefined();
  });

  it('reads entries Node quotes because they hold separators', () => {
    expect(certificateIdentity('DNS:"a, DNS:b", DNS:c', undefined)).toBe('a, DNS:b');
    expect(certificateIdentity('IP Address:1.2.3.4, URI:"urn:x,y"', undefined)).toBe('urn:x,y');
  });
});

describe('explainConnectFailure', () => {
  const at = '10.0.0.1:50051';
  const grpcJs = (last: string) => `No connection established. Last error: ${last}. Resolution note: `;

  it('a plaintext connection that a TLS listener dropped', () => {
    expect(explainConnectFailure(grpcJs('Failed to connect (2026-01-01T00:00:00.000Z)'), at, false)).toMatch(
      /^gateway 10\.0\.0\.1:50051 refused the connection: it may require TLS \(this connection is plaintext; set the tls option\) \[Failed to connect/,
    );
  });

  it('a TLS connection to a plaintext listener', () => {
    const openssl = 'Error: 803C6204407F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n';
    expect(explainConnectFailure(grpcJs(openssl), at, true)).toBe(
      'gateway 10.0.0.1:50051 does not speak TLS: it may be listening in plaintext (this connection uses TLS; configure tls on the gateway, or leave it out here) [wrong version number]',
    );
  });

  it('a certificate the client does not accept', () => {
    expect(explainConnectFailure(grpcJs('Error: unable to verify the first certificate'), at, true)).toMatch(
      /^the certificate of gateway 10\.0\.0\.1:50051 was not accepted: unable to verify the first certificate \(check tls\.ca/,
    );
    expect(explainConnectFailure(grpcJs("Error: Hostname/IP does not match certificate's altnames: Host: x. is not in the cert's altnames: DNS:y"), at, true)).toMatch(/was not accepted: Hostname\/IP does not match/);
  });

  it('says nothing about TLS when nothing is listening', () => {
    const refused = grpcJs('Error: connect ECONNREFUSED 10.0.0.1:50051');
    expect(explainConnectFailure(refused, at, false)).toBeUndefined();
    expect(explainConnectFailure(refused, at, true)).toBeUndefined();
  });
});
