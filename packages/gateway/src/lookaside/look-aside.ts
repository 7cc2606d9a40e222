// The gateway as a look-aside load balancer: backends register and report load
// (BackendRegistrations), clients ask for a provider of a service and get one chosen by the
// function's strategy, fallback and requirements exactly as a relayed call would be
// (Router with lookAside), then report how their direct call went (PickTable). None of it
// touches the call path: no call row, no call counter, no dispatcher attempt.
import {
  checkCallOptions,
  EasyRemoteError,
  FunctionNotFound,
  InvalidArgument,
  MAX_CALL_FUNCTION_NAME_BYTES,
  MAX_IDENTIFIER_BYTES,
  MAX_PICKS_PER_REQUEST,
  PermissionDenied,
  quote,
  utf8Bytes,
  type BackendDocument,
  type BackendInfo,
  type BackendRequest,
  type CallOptions,
  type Outcome,
  type Principal,
  type PrincipalLimits,
} from '@easyremote/protocol';
import type { NodeLinkObserver } from '../api/node-link-service.js';
import type { Clock, RandomSource } from '../clock.js';
import type { NodeHealthMonitor } from '../health/health-monitor.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { Provider } from '../registry/provider.js';
import type { Registry } from '../registry/registry.js';
import type { Router } from '../routing/router.js';
import { MAX_TIMER_MS } from '../config/expected.js';
import { BackendRegistrations, splitAddress } from './backend-registrations.js';
import type { LoadBalancing } from './load-balancer-service.js';
import { PickTable, type OpenPick } from './pick-table.js';

/** How long a client may start calls on a pick after asking for it, unless configured. */
export const DEFAULT_PICK_TTL_MS = 1000;

const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({});

export interface LookAsideSettings {
  gatewayId: string;
  leaseMs: number;
  heartbeatMs: number;
  slowStartMs: number;
  /** Default DEFAULT_PICK_TTL_MS. */
  pickTtlMs?: number;
  defaultTimeoutMs: number;
}

export interface LookAsideParts {
  registry: Registry;
  router: Router;
  health: Pick<NodeHealthMonitor, 'summary'>;
  detector: OutlierDetector;
  limits: PrincipalLimits;
  clock: Clock;
  random: RandomSource;
  observer: NodeLinkObserver;
  /** A pick's slot freed: calls waiting at the gateway for the function may move. */
  freed(entry: FunctionEntry): void;
  settings: LookAsideSettings;
}

export class LookAside implements LoadBalancing {
  readonly backends: BackendRegistrations;
  readonly picks: PickTable;
  private readonly pickTtlMs: number;

  constructor(private readonly parts: LookAsideParts) {
    const { registry, detector, clock, observer, settings } = parts;
    const pickTtlMs = (this.pickTtlMs = settings.pickTtlMs ?? DEFAULT_PICK_TTL_MS);
    // Checked when the gateway is built: a bad option fails there, not on the first pick.
    if (!(Number.isInteger(pickTtlMs) && pickTtlMs > 0 && pickTtlMs <= MAX_TIMER_MS)) throw new TypeError(`gateway lookAside.pickTtlMs must be a whole number of ms from 1 to ${MAX_TIMER_MS}, got ${String(pickTtlMs)}`);
    this.backends = new BackendRegistrations({ registry, detector, clock, observer, settings });
    this.picks = new PickTable({ clock, random: parts.random, detector, limits: parts.limits, freed: parts.freed, pickTtlMs, defaultTimeoutMs: settings.defaultTimeoutMs, sessions: registry.sessions });
  }

  /** What /metrics reports. */
  figures(): { backends: number; openPicks: number; picks: number; outcomes: number } {
    return { backends: this.backends.count, openPicks: this.picks.size, picks: this.picks.picksTotal, outcomes: this.picks.outcomesTotal };
  }

  /**
   * Up to `count` picks for the service (1 for GetBackend), each routed as a relayed call
   * of the function would be, each taking a call slot. Refusals come as the relayed call's
   * would; when a later pick of several fails, the picks made so far are the answer.
   */
  pick(request: BackendRequest, principal: Principal, one: boolean): BackendInfo[] {
    const count = one || request.count === 0 ? 1 : request.count;
    const options = this.check(request, count);
    if (!principal.mayCall(request.service)) throw new PermissionDenied(`${principal.name} may not call ${quote(request.service)}`);
    const entry = this.parts.registry.functions.get(request.service);
    if (entry === undefined) throw new FunctionNotFound(`function ${quote(request.service)} is not registered`);
    const picks: BackendInfo[] = [];
    for (let i = 0; i < count; i++) {
      const decision = this.parts.router.route({ entry, options, metadata: NO_METADATA, requestBytes: 0, tried: undefined, lookAside: true });
      let answer: BackendInfo | EasyRemoteError;
      if (decision.type !== 'picked') answer = decision.error;
      else if (decision.provider.session.direct === '') answer = this.info(decision.provider, undefined);
      else {
        const taken = this.picks.take(decision.provider, entry, decision.strategy, decision.context, principal);
        answer = taken instanceof EasyRemoteError ? taken : this.info(decision.provider, taken);
      }
      if (answer instanceof EasyRemoteError) {
        if (picks.length > 0) break;
        throw answer;
      }
      picks.push(answer);
    }
    return picks;
  }

  outcome(o: Outcome, principal: Principal): void {
    this.picks.outcome(o, principal, this.parts.registry);
  }

  /** Every provider a look-aside client may be given: backends, and nodes with a direct address. */
  documents(): BackendDocument[] {
    const out: BackendDocument[] = [];
    for (const s of this.parts.registry.sessions.values()) {
      if (s.kind !== 'backend' && s.direct === '') continue;
      const n = this.parts.health.summary(s);
      const t = this.picks.tally(s.nodeId);
      out.push({
        id: s.nodeId,
        kind: s.kind,
        address: s.direct,
        services: n.functions,
        healthy: n.healthy,
        available: n.available,
        reason: n.reason,
        load: n.load,
        inFlight: s.inFlight,
        picks: t.picks,
        outcomes: t.outcomes,
        failures: t.failures,
        openPicks: t.open,
        lastSeenMsAgo: n.lastSeenMsAgo,
        principal: s.principal,
        peer: s.peer,
        uptimeS: n.uptimeS,
        labels: { ...s.capabilities.labels },
      });
    }
    return out;
  }

  /** The request's limits, as a call's options would be checked; its routing options. */
  private check(r: BackendRequest, count: number): CallOptions {
    if (r.service === '') throw new InvalidArgument('BackendRequest.service is empty');
    const tooLong = (what: string, value: string, name: string, limit: number) => {
      const bytes = utf8Bytes(value);
      if (bytes > limit) throw new InvalidArgument(`${what} is ${bytes} bytes; the limit is ${limit} bytes`, { limit: { name, limit, actual: bytes } });
    };
    tooLong('the service name', r.service, 'max_call_function_name_bytes', MAX_CALL_FUNCTION_NAME_BYTES);
    tooLong('client_id', r.clientId, 'max_identifier_bytes', MAX_IDENTIFIER_BYTES);
    if (count > MAX_PICKS_PER_REQUEST) {
      throw new InvalidArgument(`count is ${count} picks; the limit is ${MAX_PICKS_PER_REQUEST} picks`, { limit: { name: 'max_picks_per_request', limit: MAX_PICKS_PER_REQUEST, actual: count } });
    }
    const options: CallOptions = {
      strategy: r.strategy,
      fallbackStrategy: r.fallbackStrategy,
      affinityKey: r.affinityKey,
      noCache: false,
      complexity: r.complexity,
      requirements: r.requirements,
      preferLocation: r.preferLocation,
      maxLatencyMs: r.maxLatencyMs,
      maxCost: r.maxCost,
      fullFidelity: false,
    };
    const bad = checkCallOptions(options, undefined);
    if (bad) throw bad;
    return options;
  }

  /** A provider as a pick tells the client about it. */
  private info(provider: Provider, pick: OpenPick | undefined): BackendInfo {
    const s = provider.session;
    const caps = s.capabilities;
    const { address, port } = splitAddress(s.direct);
    return {
      id: s.nodeId,
      address,
      port,
      load: s.load,
      services: [...s.functions],
      capacity: provider.maxConcurrent,
      labels: { ...caps.labels },
      capabilities: { cpuCores: caps.cpuCores, memoryTotalBytes: caps.memoryTotalBytes, gpus: caps.gpus.map((g) => ({ ...g })), labels: { ...caps.labels }, costPerHour: caps.costPerHour },
      queueSize: provider.spec.queueSize,
      loadBalancingJson: '',
      performanceTier: provider.performanceTier,
      pickId: pick?.id ?? 0,
      pickTtlMs: pick === undefined ? 0 : this.pickTtlMs,
      kind: s.kind,
      inFlight: provider.inFlight,
    };
  }
}
