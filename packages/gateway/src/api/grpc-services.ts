// The gRPC server and the services on it: NodeLink, Gateway (Call, CallStream, Session)
// and Admin, every RPC checked first by the intake interceptor.
import type * as grpc from '@grpc/grpc-js';
import { AdminService, type EasyRemoteError } from '@easyremote/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import type { Clock } from '../clock.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import { checkNodeCertificate } from '../tls/node-identity.js';
import type { AdminApi } from './admin-api.js';
import { adminHandlers } from './admin-service.js';
import type { CallIntake } from './call-intake.js';
import { callServiceHandlers } from './call-service.js';
import { createGrpcServer } from './grpc-server.js';
import { intakeInterceptor } from './intake-interceptor.js';
import type { NodeLinkService } from './node-link-service.js';
import type { SessionService } from './session-service.js';
import { gatewayServiceDefinition, nodeLinkDefinition } from './tolerant-definitions.js';

export interface GrpcServiceParts {
  maxPayloadBytes: number;
  auth: Authenticator;
  clock: Clock;
  metrics: MetricsRecorder;
  /** Nodes must present a certificate on their NodeLink headers. */
  nodeCertificates: boolean;
  nodeLinks: NodeLinkService;
  intake: CallIntake;
  sessions: SessionService;
  api: AdminApi;
}

export function grpcServices(parts: GrpcServiceParts): grpc.Server {
  const { auth, clock, metrics } = parts;
  // A call refused on its headers is still a call row, with the code it got.
  const refusedAtIntake = (path: string, peer: string, err: EasyRemoteError) => {
    if (path.startsWith('/easyremote.v1.Gateway/')) metrics.refused({ functionName: '', client: peer, requestBytes: 0, arrivedAt: clock.now() }, err.code);
  };
  const server = createGrpcServer(parts.maxPayloadBytes, [intakeInterceptor(auth, refusedAtIntake, parts.nodeCertificates ? checkNodeCertificate : undefined)]);
  server.addService(nodeLinkDefinition(), parts.nodeLinks.handlers());
  server.addService(gatewayServiceDefinition(), { ...callServiceHandlers(parts.intake, clock, auth, metrics), session: parts.sessions.handler() });
  server.addService(AdminService, adminHandlers(parts.api, auth));
  return server;
}
