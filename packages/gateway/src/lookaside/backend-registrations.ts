// Backends that register over the LoadBalancer service. Each is a NodeSession of kind
// 'backend' in the registry, serving its services as providers: health, leases, outlier
// detection, strategies, requirements and the admin API treat it exactly as a compute
// node, except that the gateway never sends it a call (clients do, in look-aside mode).
// A backend that sends no ReportLoad for the lease is lost by the node-link sweep, like a
// silent node.
import {
  EasyRemoteError,
  FunctionSpec,
  InvalidArgument,
  MAX_BACKENDS,
  NodeNotFound,
  Overloaded,
  PermissionDenied,
  quote,
  RegistrationRefused,
  toEasyRemoteError,
  type BackendInfo,
  type BackendLease,
  type LoadReport,
  type Principal,
} from '@easyremote/protocol';
import type { NodeLinkObserver } from '../api/node-link-service.js';
import type { Clock } from '../clock.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import { checkAddressBytes, checkDirectAddress, checkRegisterFrame } from '../registry/declaration-limits.js';
import { NodeSession, type NodeChannel } from '../registry/node-session.js';
import type { Registry } from '../registry/registry.js';
import { applyReportedLoad } from '../registry/reported-load.js';
import type { TelemetrySnapshot } from '../strategies/strategy.js';
import { checkRegisteredId } from '../tls/node-identity.js';

/** A backend's end of the registry: the gateway never sends it anything. */
const NO_CHANNEL: NodeChannel = { send: () => undefined, writable: () => true, whenWritable: (listener) => listener(), close: () => undefined };

export interface BackendSettings {
  gatewayId: string;
  leaseMs: number;
  /** Asked of backends as their ReportLoad interval. */
  heartbeatMs: number;
  slowStartMs: number;
}

export interface BackendRegistrationParts {
  registry: Registry;
  detector: OutlierDetector;
  clock: Clock;
  /** Joins and leaves are reported as a node's are (logs, node events). */
  observer: NodeLinkObserver;
  settings: BackendSettings;
}

/** 'host:port' as clients dial it, an IPv6 literal in brackets. */
export function joinAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The host and port of a session's direct address ('' → none). */
export function splitAddress(direct: string): { address: string; port: number } {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(direct);
  return m === null ? { address: '', port: 0 } : { address: m[1]!, port: Number(m[2]) };
}

/** Telemetry standing for a backend's reported load (0..1), so every load reader sees it. */
function loadTelemetry(load: number, now: number): TelemetrySnapshot {
  return { cpuPercent: load * 100, memoryUsedBytes: 0, memoryTotalBytes: 0, gpus: [], receivedAt: now };
}

function checkLoad(load: number): EasyRemoteError | undefined {
  return Number.isFinite(load) && load >= 0 && load <= 1 ? undefined : new InvalidArgument(`load must be a number within 0..1, got ${load}`);
}

export class BackendRegistrations {
  constructor(private readonly parts: BackendRegistrationParts) {}

  /** Backends registered now. */
  get count(): number {
    let n = 0;
    for (const s of this.parts.registry.sessions.values()) if (s.kind === 'backend') n++;
    return n;
  }

  private lease(): BackendLease {
    const { leaseMs, heartbeatMs, gatewayId } = this.parts.settings;
    return { leaseMs, reportIntervalMs: heartbeatMs, gatewayId };
  }

  /**
   * Registers a backend, or updates the registration it already has (same id, same
   * principal): its address, services, capacity, labels and load, and its lease renewed.
   * `certified` is set where node certificates are required: the id the client certificate names.
   */
  register(info: BackendInfo, principal: Principal, peer: string, certified?: { nodeId: string | undefined }): BackendLease {
    const { registry, clock, settings } = this.parts;
    const id = info.id;
    if (!principal.mayRegister(id)) throw new PermissionDenied(`${principal.name} may not register backend id ${quote(id)}`);
    const specs = this.specs(info);
    const address = joinAddress(info.address, info.port);
    const capabilities = {
      cpuCores: info.capabilities?.cpuCores ?? 0,
      memoryTotalBytes: info.capabilities?.memoryTotalBytes ?? 0,
      gpus: info.capabilities?.gpus ?? [],
      labels: { ...info.capabilities?.labels, ...info.labels },
      costPerHour: info.capabilities?.costPerHour ?? 0,
    };
    const problem =
      checkRegisterFrame({ nodeId: id, token: '', functions: specs, capabilities, protocolVersion: 0, instanceId: '', gateways: [], directAddress: '' }) ??
      (info.address === '' ? new InvalidArgument('address is empty: name the host clients dial') : (checkAddressBytes(info.address) ?? checkDirectAddress(address, 'address:port'))) ??
      checkLoad(info.load) ??
      (Number.isFinite(info.performanceTier) && info.performanceTier >= 0 ? undefined : new InvalidArgument(`performance_tier must be a finite number >= 0, got ${info.performanceTier}`));
    if (problem) throw problem;
    const impostor = certified === undefined ? undefined : checkRegisteredId(certified.nodeId, id);
    if (impostor) throw impostor;
    try {
      registry.check(id, specs);
    } catch (err) {
      // The registry words its checks for nodes; the rules are the same.
      const e = toEasyRemoteError(err);
      throw e.message.startsWith('node ') ? new InvalidArgument(`backend ${e.message.slice(5)}`, { limit: e.limit }) : e;
    }
    const now = clock.now();
    const existing = registry.sessions.get(id);
    if (existing !== undefined && existing.state !== 'closed') {
      if (existing.kind !== 'backend') throw new RegistrationRefused(`id ${id} is a compute node connected from ${existing.peer}`);
      if (existing.principal !== principal.name) throw new RegistrationRefused(`backend id ${id} is registered by another principal`);
      existing.capabilities = capabilities;
      existing.direct = address;
      existing.lastSeen = now;
      existing.telemetry = loadTelemetry(info.load, now);
      registry.setFunctions(existing, specs);
      return this.lease();
    }
    if (this.count >= MAX_BACKENDS) {
      throw new Overloaded(`this gateway has ${MAX_BACKENDS} backends registered`, { limit: { name: 'max_backends', limit: MAX_BACKENDS, actual: MAX_BACKENDS + 1 } });
    }
    const session = new NodeSession(id, '', NO_CHANNEL, capabilities, clock, peer);
    session.kind = 'backend';
    session.principal = principal.name;
    session.slowStartMs = settings.slowStartMs;
    session.direct = address;
    session.telemetry = loadTelemetry(info.load, now);
    registry.sessions.set(id, session);
    registry.setFunctions(session, specs);
    this.parts.observer.joined(session);
    return this.lease();
  }

  /** A backend's load, which renews its lease. */
  report(report: LoadReport, principal: Principal): BackendLease {
    const session = this.own(report.id, principal);
    const bad = checkLoad(report.load);
    if (bad) throw bad;
    const now = this.parts.clock.now();
    session.lastSeen = now;
    session.telemetry = loadTelemetry(report.load, now);
    // A backend counts its calls as a whole: each of its services sees the same figures, as a
    // node's heartbeat counts (its calls beyond this gateway's own count as the others').
    const loads = [...session.functions].map((name) => ({ name, inFlight: report.inFlight, queued: report.queued }));
    applyReportedLoad(session, loads, this.parts.registry.functions);
    return this.lease();
  }

  /** A backend leaves at once; false when none had that id (it may have expired already). */
  deregister(id: string, principal: Principal): boolean {
    const session = this.parts.registry.sessions.get(id);
    if (session === undefined || session.kind !== 'backend' || session.state === 'closed') return false;
    this.own(id, principal);
    session.state = 'closed';
    session.endReason = 'deregistered';
    this.parts.registry.remove(session);
    this.parts.detector.forgetNode(id);
    this.parts.observer.left(session, true);
    return true;
  }

  /** The principal's own live backend, or the error saying why not. */
  private own(id: string, principal: Principal): NodeSession {
    const session = this.parts.registry.sessions.get(id);
    if (session === undefined || session.kind !== 'backend' || session.state === 'closed') {
      throw new NodeNotFound(`no backend ${quote(id)} is registered (it may have expired): register it again`);
    }
    if (session.principal !== principal.name) throw new PermissionDenied(`${principal.name} may not report for backend ${id}: ${session.principal} registered it`);
    return session;
  }

  /** The backend's services as the declarations a node would send. */
  private specs(info: BackendInfo): FunctionSpec[] {
    return info.services.map((name) =>
      FunctionSpec.fromPartial({ name, kind: 'unary', maxConcurrent: info.capacity, queueSize: info.queueSize, performanceTier: info.performanceTier, loadBalancingJson: info.loadBalancingJson }),
    );
  }
}
