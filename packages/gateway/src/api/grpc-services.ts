// The gRPC server and the services on it: NodeLink, Gateway (Call, CallStream, Session),
// Admin and LoadBalancer (look-aside), every RPC checked first by the intake interceptor.
import type * as grpc from '@grpc/grpc-js';
import { AdminService, gatewayServiceDefinition, LoadBalancerService, nodeLinkDefinition } from '@easyremote/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import type { Clock } from '../clock.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import { loadBalancerHandlers, type LoadBalancing } from '../lookaside/load-balancer-service.js';
import type { AdminApi } from './admin-api.js';
import { adminHandlers } from './admin-service.js';
import type { CallIntake } from './call-intake.js';
import { callServiceHandlers } from './call-service.js';
import { createGrpcServer } from './grpc-server.js';
import { intakeInterceptor } from './intake-interceptor.js';
import type { NodeLinkService } from './node-link-service.js';
import type { SessionService } from './session-service.js';

export interface GrpcServiceParts {
  maxPayloadBytes: number;
  auth: Authenticator;
  clock: Clock;
  metrics: MetricsRecorder;
  /** Nodes (and look-aside backends) must present a certificate on their headers. */
  nodeCertificates: boolean;
  nodeLinks: NodeLinkService;
  intake: CallIntake;
  sessions: SessionService;
  api: AdminApi;
  lookAside: LoadBalancing;
}

export function grpcServices(parts: GrpcServiceParts): grpc.Server {
  const { auth, clock, metrics } = parts;
  const server = createGrpcServer(parts.maxPayloadBytes, [intakeInterceptor(auth, metrics, clock, parts.nodeCertificates)]);
  server.addService(nodeLinkDefinition(), parts.nodeLinks.handlers());
  server.addService(gatewayServiceDefinition(), { ...callServiceHandlers(parts.intake, clock, auth, metrics), session: parts.sessions.handler() });
  server.addService(AdminService, adminHandlers(parts.api, auth));
  // With node certificates required, a backend registers under the id its certificate names.
  server.addService(LoadBalancerService, loadBalancerHandlers(parts.lookAside, auth, parts.nodeCertificates));
  return server;
}
