// The gateway's certificate, key and client CA, read from PEM files and read again when
// they change (polled) or when asked (SIGHUP, reloadCertificates), without a restart.
// A reload that fails (a file missing or half written, a key that is not the
// certificate's) keeps what is in use and says why: a gateway never ends up without a
// certificate because a renewal went wrong. New connections get the new certificate;
// connections already open keep theirs.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '@easyremote/protocol';

/** How often the files are checked for changes by default (ms). */
export const DEFAULT_CERTIFICATE_WATCH_MS = 5_000;
/**
 * After a file changes, how long to wait for its companions before reading them: a
 * renewal writes the certificate and the key one after the other.
 */
export const CERTIFICATE_SETTLE_MS = 200;

export interface CertificatePaths {
  cert: string;
  key: string;
  /** CA that client certificates are verified against. */
  clientCa?: string;
}

/** The certificate in use. */
export interface CertificateMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly clientCa: Buffer | undefined;
  /** Of the leaf certificate, as openssl prints it (hex). */
  readonly serial: string;
  readonly validTo: string;
}

export type ReloadResult =
  | { readonly status: 'reloaded' | 'unchanged'; readonly serial: string }
  | { readonly status: 'failed'; readonly error: Error };

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read the ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads and checks the files: each parses, and the key is the certificate's. */
export function loadCertificates(paths: CertificatePaths): CertificateMaterial {
  const cert = read(paths.cert, 'certificate');
  const key = read(paths.key, 'private key');
  const clientCa = paths.clientCa === undefined ? undefined : read(paths.clientCa, 'client CA');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${paths.cert} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`${paths.key} is not a PEM private key: ${(err as Error).message}`, { cause: err });
  }
  if (!leaf.checkPrivateKey(privateKey)) throw new Error(`${paths.key} is not the private key of ${paths.cert}`);
  if (clientCa !== undefined) {
    try {
      new X509Certificate(clientCa);
    } catch (err) {
      throw new Error(`${paths.clientCa} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
    }
  }
  // What the listeners will do with them, tried first: a chain OpenSSL refuses fails here, not at a listener.
  createSecureContext({ cert, key, ca: clientCa });
  return { cert, key, clientCa, serial: leaf.serialNumber, validTo: leaf.validTo };
}

export interface CertificateFilesOptions {
  /** How often the files are checked for changes (ms; 0 = only on reload()). */
  watchIntervalMs?: number;
  logger: Logger;
}

/**
 * The certificate files of one gateway, and a grpc-js certificate provider over them (the
 * identity and the client CA both come from here).
 */
export class CertificateFiles implements grpc.experimental.CertificateProvider {
  private current: CertificateMaterial;
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly changeListeners = new Set<(material: CertificateMaterial) => void>();
  private readonly watchIntervalMs: number;
  private watching = false;
  private settleTimer: NodeJS.Timeout | undefined;
  private readonly onFileChange = (curr: Stats, prev: Stats) => {
    if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => this.reload('a file changed'), CERTIFICATE_SETTLE_MS);
    this.settleTimer.unref();
  };

  /** Reads the files now: a gateway configured with unreadable or mismatched ones does not start. */
  constructor(
    readonly paths: CertificatePaths,
    private readonly options: CertificateFilesOptions,
  ) {
    this.current = loadCertificates(paths);
    this.watchIntervalMs = options.watchIntervalMs ?? DEFAULT_CERTIFICATE_WATCH_MS;
  }

  get material(): CertificateMaterial {
    return this.current;
  }

  /** Told about every certificate put in use after the first. */
  onChange(listener: (material: CertificateMaterial) => void): void {
    this.changeListeners.add(listener);
  }

  /** Reads the files again; on success what changed goes to every listener, on failure nothing changes. */
  reload(why = 'asked'): ReloadResult {
    let next: CertificateMaterial;
    try {
      next = loadCertificates(this.paths);
    } catch (err) {
      const error = err as Error;
      this.options.logger.error({ why, serial: this.current.serial, reason: error.message }, 'certificate reload failed, keeping the certificate in use');
      return { status: 'failed', error };
    }
    const prev = this.current;
    const caChanged = !sameBytes(prev.clientCa, next.clientCa);
    if (!caChanged && prev.cert.equals(next.cert) && prev.key.equals(next.key)) return { status: 'unchanged', serial: prev.serial };
    this.current = next;
    if (caChanged && next.clientCa !== undefined) for (const l of this.caListeners) l({ caCertificate: next.clientCa });
    for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    for (const l of this.changeListeners) l(next);
    this.options.logger.info({ why, serial: next.serial, validTo: next.validTo }, 'certificates reloaded');
    return { status: 'reloaded', serial: next.serial };
  }

  /** Starts polling the files (when an interval is set). */
  watch(): void {
    if (this.watching || this.watchIntervalMs <= 0) return;
    this.watching = true;
    for (const path of this.files()) watchFile(path, { interval: this.watchIntervalMs, persistent: false }, this.onFileChange);
  }

  unwatch(): void {
    clearTimeout(this.settleTimer);
    if (!this.watching) return;
    this.watching = false;
    for (const path of this.files()) unwatchFile(path, this.onFileChange);
  }

  private files(): string[] {
    const { cert, key, clientCa } = this.paths;
    return clientCa === undefined ? [cert, key] : [cert, key, clientCa];
  }

  // ---- grpc.experimental.CertificateProvider ----------------------------------------------
  // Listeners hear the material in use on the next tick: grpc-js subscribes before it
  // registers the listening sockets that need the answer (an answer given at once would
  // reach none of them), and drops connections until they have one.

  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => {
      const ca = this.current.clientCa;
      if (ca !== undefined && this.caListeners.has(listener)) listener({ caCertificate: ca });
    });
  }

  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => {
      if (this.identityListeners.has(listener)) listener({ certificate: this.current.cert, privateKey: this.current.key });
    });
  }

  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}
