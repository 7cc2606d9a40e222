// A node's own listener for clients that call it directly (look-aside mode): the
// client-facing Gateway service (Call, CallStream, Session) with the gateway's intake
// rules (uncompressed requests, client tokens checked on the headers, TLS beyond
// loopback), running calls on the node's one CallRunner, so a call takes the same slot
// and queue whether it came through a gateway or straight from a client.
import * as grpc from '@grpc/grpc-js';
import {
  ENVELOPE_SLACK_BYTES,
  gatewayServiceDefinition,
  intakeInterceptor,
  KEEPALIVE_OPTIONS,
  principalOf,
  PrincipalLimits,
  raiseServerWindows,
  readPem,
  type SessionStream,
} from '@easyremote/protocol';
import type { CallRunner } from '../call-runner.js';
import { DirectIntake, stopping } from './direct-intake.js';
import { directSettings, joinHostPort, type DirectOptions, type DirectSettings } from './direct-options.js';
import { directRpcHandlers } from './direct-rpcs.js';
import { DirectSession } from './direct-session.js';

/** How long a stopping node lets its direct RPCs end before closing their connections. */
const SHUTDOWN_GRACE_MS = 1000;

export class DirectServer {
  private readonly settings: DirectSettings;
  private readonly server: grpc.Server;
  private readonly intake: DirectIntake;
  private readonly sessions = new Set<DirectSession>();
  private boundPort = 0;
  private stopped = false;

  constructor(options: DirectOptions, runner: CallRunner, nodeId: string) {
    const settings = (this.settings = directSettings(options));
    const limit = settings.maxPayloadBytes + ENVELOPE_SLACK_BYTES;
    const auth = settings.auth;
    this.server = new grpc.Server({
      interceptors: [intakeInterceptor((request) => auth.client(request.authorization))],
      ...KEEPALIVE_OPTIONS,
      'grpc.max_receive_message_length': limit,
      'grpc.max_send_message_length': limit,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    });
    this.intake = new DirectIntake(runner, new PrincipalLimits({ now: () => performance.now() }), { nodeId, maxPayloadBytes: settings.maxPayloadBytes, defaultTimeoutMs: settings.defaultTimeoutMs });
    this.server.addService(gatewayServiceDefinition(), {
      ...directRpcHandlers(this.intake, auth, settings.maxPayloadBytes),
      session: (stream: SessionStream) => {
        if (this.stopped) {
          stream.end();
          return;
        }
        this.sessions.add(new DirectSession(stream, this.intake, principalOf(stream.metadata, auth), settings.maxPayloadBytes, (s) => this.sessions.delete(s)));
      },
    });
  }

  /** Binds the listen address; a port in use rejects naming it. */
  listen(): Promise<void> {
    const { host, port, tls } = this.settings;
    const credentials = tls === undefined ? grpc.ServerCredentials.createInsecure() : grpc.ServerCredentials.createSsl(null, [{ cert_chain: readPem(tls.cert, 'direct.tls.cert'), private_key: readPem(tls.key, 'direct.tls.key') }], false);
    return new Promise((resolve, reject) =>
      this.server.bindAsync(joinHostPort(host, port), credentials, (err, bound) => {
        if (err) return reject(new Error(`cannot listen for direct calls on ${joinHostPort(host, port)}: ${err.message}`, { cause: err }));
        this.boundPort = bound;
        raiseServerWindows(this.server);
        resolve();
      }),
    );
  }

  /** The port bound (after listen). */
  get port(): number {
    return this.boundPort;
  }

  /** host:port the gateway hands to look-aside clients ('' before listen). */
  get advertised(): string {
    const { host, port } = this.settings.advertise;
    const p = port ?? this.boundPort;
    return p === 0 ? '' : joinHostPort(host, p);
  }

  /** Sessions take no more calls (the node drains); calls in flight go on. */
  goAway(reason: string): void {
    for (const s of this.sessions) s.goAway(reason);
  }

  /** Ends every direct call still open (CANCELLED), then the listener. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.sessions) s.goAway('the node is stopping');
    this.intake.failAll(stopping(this.intake.nodeId));
    for (const s of [...this.sessions]) s.end();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, SHUTDOWN_GRACE_MS);
      force.unref();
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
