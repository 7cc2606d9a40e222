// The tolerant service definitions live in @easyremote/protocol: a node serving calls directly registers them too.
export { gatewayServiceDefinition, isUndecodable, nodeLinkDefinition, type Undecodable } from '@easyremote/protocol';
