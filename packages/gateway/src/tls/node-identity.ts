// With node certificates required, a node is who its certificate says, and nothing else
// decides it: a NodeLink stream without a certificate verified against the client CA is
// refused on its headers, and a register frame naming another node id is refused.
import type * as grpc from '@grpc/grpc-js';
import { certificateIdentity, clip, MAX_QUOTED_CHARS, Unauthenticated, type EasyRemoteError } from '@easyremote/protocol';

/** What grpc-js knows of a call's TLS peer (its type is not exported by name). */
export type AuthContext = ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']>;

/** The node id a verified client certificate names; undefined without one. */
export function certifiedNodeId(context: AuthContext): string | undefined {
  const cert = context.sslPeerCertificate;
  if (cert === undefined) return undefined;
  const cn = cert.subject?.CN;
  return certificateIdentity(cert.subjectaltname, Array.isArray(cn) ? cn[0] : cn);
}

/** A NodeLink stream's certificate, checked on its headers; undefined when it names a node. */
export function checkNodeCertificate(context: AuthContext): EasyRemoteError | undefined {
  if (context.sslPeerCertificate === undefined) {
    return new Unauthenticated('this gateway requires nodes to present a client certificate signed by its client CA (node option tls: { cert, key }); none was presented, or it was not signed by that CA');
  }
  if (certifiedNodeId(context) === undefined) return new Unauthenticated('the node certificate names no node id (no DNS or URI subjectAltName, no CN)');
  return undefined;
}

/** A register frame's node id against the certificate's; undefined when they agree. */
export function checkRegisteredId(certified: string | undefined, claimed: string): EasyRemoteError | undefined {
  if (certified === undefined) return new Unauthenticated('this gateway requires nodes to present a client certificate');
  if (claimed === certified) return undefined;
  return new Unauthenticated(`this node's certificate names node ${JSON.stringify(certified)}; it cannot register as ${JSON.stringify(clip(claimed, MAX_QUOTED_CHARS))}`);
}
