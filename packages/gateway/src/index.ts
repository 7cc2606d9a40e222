export { Gateway, DEFAULT_PORT, DEFAULT_HOST, DEFAULT_CALL_TIMEOUT_MS, type GatewayOptions, type NodeSummary, type GatewayEvents } from './gateway.js';
export type { FunctionConfig } from './registry/function-entry.js';
export { registerStrategy, createStrategy, strategyNames, hasStrategy } from './strategies/registry.js';
export type { Candidate, SelectContext, Strategy, StrategyFactory, StrategyOptions, Outcome, Preferences, TelemetrySnapshot, NodeCapabilities, ProviderHistory } from './strategies/strategy.js';
