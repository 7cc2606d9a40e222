// nginx as a gRPC proxy (grpc_pass) in front of the plain grpc-js server: Debian's binary,
// started by the tests' launcher (test/support/nginx.ts) with an upstream of our own.
import { nginxAvailable, runNginx, NGINX_BIN, type NginxProcess } from '../../test/support/nginx.js';
import { procCpuUs, track } from '../lib.js';

export { NGINX_BIN };

export interface Nginx extends NginxProcess {
  /** nginx's CPU time so far (user + system), µs, from /proc (10 ms resolution). */
  cpuUs(): number;
}

/** Starts nginx on `port` proxying to `upstreamPort`; undefined when the binary is missing. */
export async function startNginx(port: number, upstreamPort: number): Promise<Nginx | undefined> {
  if (!nginxAvailable()) return undefined;
  const nginx = await runNginx(
    () => `  upstream direct {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:${port} http2;
    keepalive_requests 100000000;
    http2_max_concurrent_streams 1024;
    client_max_body_size 0;
    location / {
      grpc_pass grpc://direct;
    }
  }`,
    port,
  );
  track(nginx.child);
  const pid = nginx.child.pid!;
  return { ...nginx, cpuUs: () => procCpuUs(pid) };
}
