// Test support: certificates made with the openssl CLI, with the commands
// docs/deploying.md gives operators (serials set explicitly, so a test knows which
// certificate a connection was served).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Issued {
  readonly cert: string;
  readonly key: string;
  /** The serial number as openssl prints it (upper-case hex). */
  readonly serial: string;
}

export class CertificateLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'easyremote-tls-'));
  private nextSerial = 0x1000;

  private openssl(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** A self-signed certificate authority. */
  ca(name: string): Issued {
    const cert = join(this.dir, `${name}.crt`);
    const key = join(this.dir, `${name}.key`);
    this.openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '3650', '-subj', `/CN=${name}`,
    ]);
    return { cert, key, serial: '' };
  }

  /**
   * A certificate signed by `ca`. `san` is an openssl subjectAltName value
   * ("IP:127.0.0.1,DNS:localhost", "DNS:gpu-1"); `usage` serverAuth or clientAuth.
   */
  issue(ca: Issued, name: string, options: { cn: string; san?: string; usage: 'serverAuth' | 'clientAuth'; serial?: number }): Issued {
    const cert = join(this.dir, `${name}.crt`);
    const key = join(this.dir, `${name}.key`);
    const csr = join(this.dir, `${name}.csr`);
    const ext = join(this.dir, `${name}.ext`);
    const serial = options.serial ?? this.nextSerial++;
    writeFileSync(ext, `${options.san ? `subjectAltName=${options.san}\n` : ''}extendedKeyUsage=${options.usage}\n`);
    this.openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${options.cn}`]);
    this.openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial), '-days', '30', '-extfile', ext, '-out', cert]);
    return { cert, key, serial: serial.toString(16).toUpperCase() };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
