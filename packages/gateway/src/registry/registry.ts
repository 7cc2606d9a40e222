// Who is connected and what they serve: node sessions and function → providers.
import { EventEmitter } from 'node:events';
import { InvalidArgument, type FunctionSpec } from '@easyremote/protocol';
import { hasStrategy, strategyNames } from '../strategies/registry.js';
import { parseRequirements } from '../routing/requirements.js';
import { DEFAULT_STRATEGY, FunctionEntry, type ConfigDefaults, type FunctionConfigOverride } from './function-entry.js';
import type { NodeSession } from './node-session.js';

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$/;
const NODE_ID_PATTERN = /^[A-Za-z0-9_.:@\-]{1,128}$/;

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
  ) {
    super();
  }

  /** Checks a registration before anything changes; throws InvalidArgument naming the problem. */
  static validate(nodeId: string, specs: readonly FunctionSpec[]): void {
    if (!NODE_ID_PATTERN.test(nodeId)) {
      throw new InvalidArgument(`node id ${JSON.stringify(nodeId)} is not allowed: 1-128 of letters, digits and _ . : @ -`);
    }
    if (specs.length === 0) throw new InvalidArgument(`node ${nodeId} registers no functions`);
    const seen = new Set<string>();
    for (const spec of specs) {
      if (!NAME_PATTERN.test(spec.name)) {
        throw new InvalidArgument(`function name ${JSON.stringify(spec.name)} is not allowed: letters, digits, _ . - (max 128), starting with a letter or _`);
      }
      if (seen.has(spec.name)) throw new InvalidArgument(`function ${spec.name} is listed twice`);
      seen.add(spec.name);
      if (spec.kind !== 'unary' && spec.kind !== 'stream') throw new InvalidArgument(`function ${spec.name}: kind must be unary or stream, got ${JSON.stringify(spec.kind)}`);
      try {
        parseRequirements(spec.requirements);
      } catch (err) {
        throw new InvalidArgument(`function ${spec.name}: ${(err as Error).message}`);
      }
      if (spec.loadBalancingJson) {
        let lb: unknown;
        try {
          lb = JSON.parse(spec.loadBalancingJson);
        } catch {
          throw new InvalidArgument(`function ${spec.name}: loadBalancing is not valid JSON`);
        }
        if (typeof lb !== 'object' || lb === null || Array.isArray(lb)) throw new InvalidArgument(`function ${spec.name}: loadBalancing must be an object`);
        const reqs = (lb as { requirements?: unknown }).requirements;
        if (reqs !== undefined) {
          try {
            parseRequirements(reqs as Record<string, string>);
          } catch (err) {
            throw new InvalidArgument(`function ${spec.name}: ${(err as Error).message}`);
          }
        }
        for (const key of ['strategy', 'fallbackStrategy'] as const) {
          const name = (lb as Record<string, unknown>)[key];
          if (name !== undefined && (typeof name !== 'string' || !hasStrategy(name))) {
            throw new InvalidArgument(`function ${spec.name}: unknown ${key} ${JSON.stringify(name)}; known: ${strategyNames().join(', ')}`);
          }
        }
      }
    }
  }

  /** Replaces the functions a session serves (first registration or re-registration). */
  setFunctions(session: NodeSession, specs: readonly FunctionSpec[]): void {
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
    entry.providers.delete(nodeId);
    if (entry.providers.size === 0) {
      this.functions.delete(entry.name);
      this.emit('function-removed', entry.name);
    } else {
      entry.refreshConfig();
    }
  }
}
