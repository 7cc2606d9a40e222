// Request limits live in @easyremote/protocol: a node serving calls directly checks the same ones.
export { checkCallOptions, checkFunctionName, checkMetadata } from '@easyremote/protocol';
