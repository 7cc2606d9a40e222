// Who is connected and what they serve: node sessions and function → providers.
import { EventEmitter } from 'node:events';
import { clip, EasyRemoteError, FUNCTION_NAME_PATTERN, MAX_QUOTED_CHARS, FUNCTION_NAME_RULE, InvalidArgument, NODE_ID_PATTERN, NODE_ID_RULE, quote, type FunctionSpec } from '@easyremote/protocol';
import { checkFunctionSpec, checkOptionDepth } from './declaration-limits.js';
import { hasStrategy, strategyNames } from '../strategies/registry.js';
import { DEFAULT_STRATEGY, FunctionEntry, type ConfigDefaults, type FunctionConfigOverride } from './function-entry.js';
import type { NodeSession } from './node-session.js';
import { systemClock, type Clock } from '../clock.js';

/** How long a function that lost its last provider is kept, and calls wait for one (ms). */
export const DEFAULT_PROVIDER_GAP_MS = 10_000;

export interface RegistryEvents {
  'function-added': [FunctionEntry];
  'function-removed': [string];
  /** Providers of a function declared different configurations (a warning). */
  'config-conflict': [FunctionEntry, string];
  /** A function gained a provider (capacity may have freed up for waiting calls). */
  'provider-added': [FunctionEntry];
}

export class Registry extends EventEmitter<RegistryEvents> {
  readonly sessions = new Map<string, NodeSession>();
  readonly functions = new Map<string, FunctionEntry>();

  constructor(
    private readonly overrides: Record<string, FunctionConfigOverride> = {},
    private readonly defaults: ConfigDefaults = { strategy: DEFAULT_STRATEGY, retryCount: 2 },
    private readonly gap: { clock: Clock; providerGapMs: number } = { clock: systemClock, providerGapMs: DEFAULT_PROVIDER_GAP_MS },
  ) {
    super();
  }

  /** Forgets functions that have had no provider for longer than the gap window. */
  sweepEmpty(): void {
    const now = this.gap.clock.now();
    for (const entry of [...this.functions.values()]) {
      if (entry.emptySince !== undefined && now - entry.emptySince >= this.gap.providerGapMs) {
        this.functions.delete(entry.name);
        this.emit('function-removed', entry.name);
      }
    }
  }

  /**
   * Checks a registration before anything changes: names, kinds, requirements, and each
   * function's configuration as it would resolve here (strategy names and options
   * included). Throws InvalidArgument naming the node, the function and the problem.
   */
  check(nodeId: string, specs: readonly FunctionSpec[]): void {
    if (!NODE_ID_PATTERN.test(nodeId)) {
      throw new InvalidArgument(`node id ${quote(nodeId)} is not allowed: ${NODE_ID_RULE}`);
    }
    if (specs.length === 0) throw new InvalidArgument(`node ${nodeId} registers no functions`);
    const seen = new Set<string>();
    for (const spec of specs) {
      if (!FUNCTION_NAME_PATTERN.test(spec.name)) {
        throw new InvalidArgument(`node ${nodeId}: function name ${quote(spec.name)} is not allowed: ${FUNCTION_NAME_RULE}`);
      }
      if (seen.has(spec.name)) throw new InvalidArgument(`node ${nodeId}: function ${spec.name} is listed twice`);
      seen.add(spec.name);
      const problem = (message: string, cause?: EasyRemoteError) => new InvalidArgument(`node ${nodeId}: function ${spec.name}: ${message}`, { limit: cause?.limit });
      if (spec.kind !== 'unary' && spec.kind !== 'stream') throw problem(`kind must be unary or stream, got ${quote(spec.kind)}`);
      const limited = checkFunctionSpec(spec);
      if (limited) throw problem(limited.message, limited);
      if (spec.loadBalancingJson) {
        let lb: unknown;
        try {
          lb = JSON.parse(spec.loadBalancingJson);
        } catch {
          throw problem('loadBalancing is not valid JSON');
        }
        if (typeof lb !== 'object' || lb === null || Array.isArray(lb)) throw problem('loadBalancing must be an object');
        const tooDeep = checkOptionDepth(lb);
        if (tooDeep) throw problem(tooDeep.message, tooDeep);
        for (const key of ['strategy', 'fallbackStrategy'] as const) {
          const name = (lb as Record<string, unknown>)[key];
          if (name !== undefined && (typeof name !== 'string' || !hasStrategy(name))) {
            throw problem(`unknown ${key} ${typeof name === 'string' ? quote(name) : clip(String(JSON.stringify(name)), MAX_QUOTED_CHARS)}; known: ${strategyNames().join(', ')}`);
          }
        }
      }
      // A declaration identical to the one a function already uses was checked when it came first.
      if (this.functions.get(spec.name)?.isDefinedBy(spec)) continue;
      try {
        FunctionEntry.prepare(spec, this.overrides[spec.name] ?? {}, this.defaults);
      } catch (err) {
        throw problem((err as Error).message, err instanceof EasyRemoteError ? err : undefined);
      }
    }
  }

  /** Replaces the functions a session serves (first registration or re-registration). */
  setFunctions(session: NodeSession, specs: readonly FunctionSpec[]): void {
    session.functions = new Set(specs.map((s) => s.name));
    for (const [name, r] of session.reported) {
      if (session.functions.has(name)) continue;
      session.reported.delete(name);
      session.inFlightElsewhere -= r.elsewhere;
    }
    session.slotCapacity = specs.some((s) => s.maxConcurrent === 0) ? 0 : specs.reduce((sum, s) => sum + s.maxConcurrent, 0);
    const wanted = new Set(specs.map((s) => s.name));
    for (const [name, entry] of this.functions) {
      if (!wanted.has(name) && entry.providers.get(session.nodeId)?.session === session) this.removeProvider(entry, session.nodeId);
    }
    for (const spec of specs) {
      let entry = this.functions.get(spec.name);
      if (entry === undefined) {
        entry = new FunctionEntry(spec.name, spec, this.overrides[spec.name] ?? {}, this.defaults);
        this.functions.set(spec.name, entry);
        entry.addProvider(session, spec);
        this.emit('function-added', entry);
      } else {
        const before = entry.conflict;
        entry.emptySince = undefined;
        entry.addProvider(session, spec);
        const conflict = entry.refreshConfig();
        if (conflict && conflict !== before) this.emit('config-conflict', entry, conflict);
      }
      this.emit('provider-added', entry);
    }
  }

  /** Removes every provider of a session and the session itself. */
  remove(session: NodeSession): void {
    if (this.sessions.get(session.nodeId) === session) this.sessions.delete(session.nodeId);
    for (const entry of [...this.functions.values()]) {
      if (entry.providers.get(session.nodeId)?.session === session) this.removeProvider(entry, session.nodeId);
    }
  }

  private removeProvider(entry: FunctionEntry, nodeId: string): void {
    entry.removeProvider(nodeId);
    // An entry without providers stays for the gap window (its configuration and what its
    // strategies learned included): a restarting node finds it again, and calls wait for it.
    if (entry.providers.size === 0) entry.emptySince = this.gap.clock.now();
    else entry.refreshConfig();
  }
}
