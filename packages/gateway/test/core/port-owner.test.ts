import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listenFailure, PortInUseError } from '../../src/api/listen-failure.js';
import { findPortOwner } from '../../src/api/port-owner.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const row = (local: string, st: string, inode: number) => `   0: ${local} 00000000:0000 ${st} 00000000:00000000 00:00000000 00000000  1000        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;

let root: string;
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A /proc with the given tables and processes (pid → fds → link targets, and argv). */
function fakeProc(tcp: string, tcp6: string, processes: Record<number, { fds: string[]; argv?: string[] }>): string {
  root = mkdtempSync(join(tmpdir(), 'proc-'));
  mkdirSync(join(root, 'net'));
  writeFileSync(join(root, 'net/tcp'), HEADER + tcp);
  writeFileSync(join(root, 'net/tcp6'), HEADER + tcp6);
  for (const [pid, p] of Object.entries(processes)) {
    mkdirSync(join(root, pid, 'fd'), { recursive: true });
    p.fds.forEach((target, i) => symlinkSync(target, join(root, pid, 'fd', String(i))));
    if (p.argv) writeFileSync(join(root, pid, 'cmdline'), `${p.argv.join('\0')}\0`);
  }
  mkdirSync(join(root, 'self'));
  return root;
}

describe('findPortOwner (/proc)', () => {
  it('finds the process whose descriptors hold the listening socket of the port, IPv4 or IPv6', () => {
    // 50051 = 0xC383; a connected socket on the same port (st 01) is not the listener.
    const proc = fakeProc(row('0100007F:C383', '01', 111) + row('0100007F:C383', '0A', 222), row('00000000000000000000000000000000:1F90', '0A', 333), {
      10: { fds: ['/dev/null', 'socket:[111]'], argv: ['/usr/bin/python3', 'client.py'] },
      20: { fds: ['pipe:[5]', 'socket:[222]'], argv: ['/usr/local/bin/node', 'gateway.js', '--port', '50051'] },
      30: { fds: ['socket:[333]'], argv: ['nginx: master process'] },
    });
    expect(findPortOwner(50051, proc)).toEqual({ pid: 20, command: 'node gateway.js --port 50051' });
    expect(findPortOwner(8080, proc)).toEqual({ pid: 30, command: 'nginx: master process' });
  });

  it('gives up quietly: no listener, or a socket no readable process holds', () => {
    const proc = fakeProc(row('0100007F:C383', '0A', 222), '', { 20: { fds: ['socket:[999]'] } });
    expect(findPortOwner(50052, proc)).toBeUndefined();
    expect(findPortOwner(50051, proc)).toBeUndefined();
    expect(findPortOwner(50051, join(tmpdir(), 'no-such-proc'))).toBeUndefined();
  });

  it('cuts a long command line', () => {
    const proc = fakeProc(row('0100007F:C383', '0A', 222), '', { 20: { fds: ['socket:[222]'], argv: ['node', 'x'.repeat(200)] } });
    const owner = findPortOwner(50051, proc)!;
    expect(owner.command).toHaveLength(80);
    expect(owner.command.endsWith('…')).toBe(true);
  });
});

describe('listenFailure', () => {
  it('a port in use names the port, the listener, the host and the owner, in one line', () => {
    const err = listenFailure(Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:1'), { code: 'EADDRINUSE' }), 1, '127.0.0.1', 'HTTP');
    expect(err).toBeInstanceOf(PortInUseError);
    expect(err).toMatchObject({ code: 'EADDRINUSE', port: 1, host: '127.0.0.1', listener: 'HTTP' });
    expect(err.message).toMatch(/^port 1 \(HTTP\) on 127\.0\.0\.1 is already in use by (another process|pid \d+.*)$/);
  });

  it('grpc-js bind errors become one line naming the port', () => {
    const grpcText = 'No address added out of total 1 resolved errors: [listen EADDRNOTAVAIL: address not available 10.255.255.1]';
    expect(listenFailure(new Error(grpcText), 50051, '10.255.255.1', 'gRPC').message).toBe(
      'cannot listen on 10.255.255.1 port 50051 (gRPC): no interface of this machine has that address (EADDRNOTAVAIL)',
    );
    expect(listenFailure(new Error('No address added out of total 1 resolved errors: [something odd happened]'), 1, 'h', 'gRPC').message).toBe('cannot listen on h port 1 (gRPC): something odd happened');
  });
});
