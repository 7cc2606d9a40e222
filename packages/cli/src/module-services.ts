// What `easyremote node ./module.js` serves from a module: every exported class with
// @remote methods (constructed with no arguments), every exported object with @remote
// methods (an instance), and every other exported function, under its export name.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

type RemoteMethodsOf = (instance: object) => ReadonlyArray<{ key: string }>;

export interface ModuleServices {
  /** Instances whose @remote methods are served, with the export they came from. */
  readonly instances: ReadonlyArray<{ readonly exportName: string; readonly instance: object }>;
  /** Plain functions served under their export name (a default export under the function's own name). */
  readonly functions: ReadonlyArray<{ readonly name: string; readonly fn: (...args: never[]) => unknown }>;
}

function isClass(value: unknown): value is new () => object {
  return typeof value === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(value));
}

/** Imports the module (a path relative to `cwd`, or a file: URL) and sorts out what it exports. */
export async function loadModuleServices(specifier: string, remoteMethodsOf: RemoteMethodsOf, cwd = process.cwd()): Promise<ModuleServices> {
  const url = specifier.startsWith('file:') ? specifier : pathToFileURL(resolve(cwd, specifier)).href;
  const namespace = (await import(url)) as Record<string, unknown>;
  const instances: Array<{ exportName: string; instance: object }> = [];
  const functions: Array<{ name: string; fn: (...args: never[]) => unknown }> = [];
  for (const [exportName, value] of Object.entries(namespace)) {
    if (isClass(value)) {
      // Decorators with experimentalDecorators mark the prototype; a class without marks is not a service.
      if (remoteMethodsOf(Object.create(value.prototype) as object).length > 0) instances.push({ exportName, instance: new value() });
    } else if (typeof value === 'function') {
      const name = exportName === 'default' ? value.name : exportName;
      if (name === '') throw new TypeError(`${specifier}: the default export is an anonymous function; name it or export it under a name`);
      functions.push({ name, fn: value as (...args: never[]) => unknown });
    } else if (typeof value === 'object' && value !== null && remoteMethodsOf(value).length > 0) {
      instances.push({ exportName, instance: value });
    }
  }
  if (instances.length === 0 && functions.length === 0) {
    throw new TypeError(`${specifier} exports nothing to serve: no class or object with @remote methods, and no function`);
  }
  return { instances, functions };
}
