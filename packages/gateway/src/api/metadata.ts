// Call metadata rules live in @easyremote/protocol: a node serving calls directly applies the same ones.
export { callerMetadata, handlerMetadata, metadataString, principalOf, PRINCIPAL_METADATA_KEY } from '@easyremote/protocol';
