// Which process holds a listening TCP port, for an error that can say so. Linux only: the
// socket's inode from /proc/net/tcp and tcp6, then the process that has that socket among
// its file descriptors. Anything unreadable (another user's process, no /proc) gives up
// quietly: the caller then says "another process".
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';

/** The listening state in /proc/net/tcp's `st` column. */
const TCP_LISTEN = '0A';
/** The command line is cut here, so the error stays one short line. */
const MAX_COMMAND_CHARS = 80;

export interface PortOwner {
  pid: number;
  /** Its command line, the program's base name first, e.g. `node gateway.js`. */
  command: string;
}

/** Inodes of the sockets listening on `port` (any address, IPv4 or IPv6). */
function listeningInodes(port: number, proc: string): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(`${proc}/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (local === undefined || cols[3] !== TCP_LISTEN) continue;
      const hexPort = local.slice(local.lastIndexOf(':') + 1);
      if (Number.parseInt(hexPort, 16) === port && cols[9] !== undefined && cols[9] !== '0') inodes.add(cols[9]);
    }
  }
  return inodes;
}

function commandOf(pid: number, proc: string): string {
  try {
    const argv = readFileSync(`${proc}/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    if (argv.length === 0) return '';
    const command = [basename(argv[0]!), ...argv.slice(1)].join(' ');
    return command.length > MAX_COMMAND_CHARS ? `${command.slice(0, MAX_COMMAND_CHARS - 1)}…` : command;
  } catch {
    return '';
  }
}

/** The process listening on `port`, when /proc says and lets us read it. */
export function findPortOwner(port: number, proc = '/proc'): PortOwner | undefined {
  const inodes = listeningInodes(port, proc);
  if (inodes.size === 0) return undefined;
  const wanted = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`${proc}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (wanted.has(target)) return { pid: Number(pid), command: commandOf(Number(pid), proc) };
    }
  }
  return undefined;
}
