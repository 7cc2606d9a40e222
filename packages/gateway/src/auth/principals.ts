// Principals live in @easyremote/protocol: a node serving calls directly applies the same rules.
export { ANONYMOUS, checkPrincipals, Principal, sha256Hex, type PrincipalConfig, type Role } from '@easyremote/protocol';
