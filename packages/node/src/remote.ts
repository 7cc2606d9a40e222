// The @remote decorator. Options are stored with reflect-metadata on the prototype, so
// `ComputeNode.serve(instance)` finds them; nothing depends on emitted design types.
import 'reflect-metadata';
import type { RemoteOptions } from './options.js';

const REMOTE_KEY = Symbol.for('easyremote:remote');
const REMOTE_METHODS = Symbol.for('easyremote:remote-methods');

/**
 * Marks a class method as a remote function. Works with `experimentalDecorators`
 * (the TypeScript default for this project) and with standard ECMAScript decorators.
 */
export function remote(options: RemoteOptions = {}) {
  return function (target: object, keyOrContext: string | symbol | ClassMethodDecoratorContext, descriptor?: PropertyDescriptor): void {
    if (typeof keyOrContext === 'object') {
      // Standard decorators see no prototype: record on the instance's prototype at construction.
      const key = keyOrContext.name;
      keyOrContext.addInitializer(function (this: unknown) {
        mark(Object.getPrototypeOf(this) as object, key, options);
      });
      return;
    }
    if (descriptor !== undefined && typeof descriptor.value !== 'function') {
      throw new TypeError(`@remote can only decorate methods, not ${String(keyOrContext)}`);
    }
    mark(target, keyOrContext, options);
  } as MethodDecorator & ((value: unknown, context: ClassMethodDecoratorContext) => void);
}

function mark(proto: object, key: string | symbol, options: RemoteOptions): void {
  Reflect.defineMetadata(REMOTE_KEY, options, proto, key);
  const own: Array<string | symbol> = Reflect.getOwnMetadata(REMOTE_METHODS, proto) ?? [];
  if (!own.includes(key)) Reflect.defineMetadata(REMOTE_METHODS, [...own, key], proto);
}

/** The remote methods of an instance (its class and base classes), with their options. */
export function remoteMethodsOf(instance: object): Array<{ key: string; options: RemoteOptions }> {
  const found = new Map<string, RemoteOptions>();
  for (let proto = Object.getPrototypeOf(instance); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const keys: Array<string | symbol> = Reflect.getOwnMetadata(REMOTE_METHODS, proto) ?? [];
    for (const key of keys) {
      if (typeof key !== 'string' || found.has(key)) continue;
      found.set(key, Reflect.getMetadata(REMOTE_KEY, proto, key) as RemoteOptions);
    }
  }
  return [...found].map(([key, options]) => ({ key, options }));
}
