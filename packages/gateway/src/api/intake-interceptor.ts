// The gateway's intake rule, for the shared interceptor (@easyremote/protocol): node
// streams and backends' own RPCs need a node principal (and, where required, a node
// certificate); everything else a client or admin principal.
import type * as grpc from '@grpc/grpc-js';
import { intakeInterceptor as sharedInterceptor, Principal, type EasyRemoteError, type IntakeRefusal } from '@easyremote/protocol';
import type { Authenticator } from '../auth/authenticator.js';

export type { IntakeRefusal };

const NODE_LINK_PREFIX = '/easyremote.v1.NodeLink/';
/** The LoadBalancer RPCs a backend makes about itself: they authenticate as nodes do. */
export const BACKEND_PATHS: ReadonlySet<string> = new Set(['RegisterBackend', 'ReportLoad', 'Deregister'].map((m) => `/easyremote.v1.LoadBalancer/${m}`));

/** Checks a node's TLS peer (a required client certificate); undefined when it may go on. */
export type NodeCertificateCheck = (context: ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']>) => EasyRemoteError | undefined;

export function intakeInterceptor(auth: Authenticator, refused: IntakeRefusal, nodeCertificate?: NodeCertificateCheck): grpc.ServerInterceptor {
  return sharedInterceptor((request) => {
    const asNode = request.path.startsWith(NODE_LINK_PREFIX) || BACKEND_PATHS.has(request.path);
    if (!asNode) return auth.client(request.authorization);
    const principal = auth.nodeStream(request.authorization);
    if (!(principal instanceof Principal)) return principal;
    return nodeCertificate?.(request.authContext()) ?? principal;
  }, refused);
}
