// The gateway's intake rule, for the shared interceptor (@easyremote/protocol): node
// streams and backends' own RPCs need a node principal (and, where required, a node
// certificate); everything else a client or admin principal. A call refused here is
// recorded as a refused call, as one refused later would be.
import type * as grpc from '@grpc/grpc-js';
import { intakeInterceptor as sharedInterceptor, Principal } from '@easyremote/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import type { Clock } from '../clock.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import { checkNodeCertificate } from '../tls/node-identity.js';

const NODE_LINK_PREFIX = '/easyremote.v1.NodeLink/';
const CALL_PREFIX = '/easyremote.v1.Gateway/';
/** The LoadBalancer RPCs a backend makes about itself: they authenticate as nodes do. */
export const BACKEND_PATHS: ReadonlySet<string> = new Set(['RegisterBackend', 'ReportLoad', 'Deregister'].map((m) => `/easyremote.v1.LoadBalancer/${m}`));

/** With `nodeCertificates`, node streams and backends' RPCs also need a certificate signed by the client CA. */
export function intakeInterceptor(auth: Authenticator, metrics: Pick<MetricsRecorder, 'refused'>, clock: Clock, nodeCertificates: boolean): grpc.ServerInterceptor {
  return sharedInterceptor(
    (request) => {
      const asNode = request.path.startsWith(NODE_LINK_PREFIX) || BACKEND_PATHS.has(request.path);
      if (!asNode) return auth.client(request.authorization);
      const principal = auth.nodeStream(request.authorization);
      if (!(principal instanceof Principal) || !nodeCertificates) return principal;
      return checkNodeCertificate(request.authContext()) ?? principal;
    },
    (path, peer, err) => {
      if (path.startsWith(CALL_PREFIX)) metrics.refused({ functionName: '', client: peer, requestBytes: 0, arrivedAt: clock.now() }, err.code);
    },
  );
}
