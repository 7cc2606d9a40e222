// The authenticator lives in @easyremote/protocol: a node serving calls directly checks tokens the same way.
export { Authenticator, bearerOf, type AuthOptions } from '@easyremote/protocol';
