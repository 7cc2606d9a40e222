// Per-principal limits live in @easyremote/protocol: a node serving calls directly applies them too.
export { CONCURRENCY_RETRY_AFTER_MS, PrincipalLimits } from '@easyremote/protocol';
