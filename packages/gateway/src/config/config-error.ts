// A configuration refused: every problem with the path of the value (`tls.cert`,
// `auth.principals[0].role`) and what was expected there.
import type { z } from 'zod';

export interface ConfigProblem {
  /** Where the value is, e.g. `functions.train_model.healthCheck.timeout`; '' for the whole document. */
  readonly path: string;
  /** What was expected and what was given, e.g. `expected a port number (integer 0..65535), got "admin"`. */
  readonly message: string;
}

export class GatewayConfigError extends Error {
  constructor(
    /** Where the configuration came from (a file path, an environment variable, a flag). */
    readonly source: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(`${source}: ${problems.map(describeProblem).join('; ')}`);
    this.name = 'GatewayConfigError';
  }
}

export function describeProblem(p: ConfigProblem): string {
  return p.path === '' ? p.message : `${p.path}: ${p.message}`;
}

/** `a.b[0].c` from zod's path segments. */
export function pathText(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? String(seg) : `.${String(seg)}`;
  return out;
}

/**
 * Zod's issues as problems. A value that may be of several kinds (false or an object)
 * and is an object is judged as the object: its own fields' problems are reported, not
 * "none of the kinds matched".
 */
export function problemsOf(issues: readonly z.core.$ZodIssue[], prefix: ReadonlyArray<PropertyKey> = []): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const iss of issues) {
    const path = [...prefix, ...iss.path];
    if (iss.code === 'invalid_union' && typeof iss.input === 'object' && iss.input !== null) {
      const objectBranch = iss.errors.find((branch) => branch.every((b) => b.path.length > 0 || b.code === 'unrecognized_keys'));
      if (objectBranch !== undefined) {
        out.push(...problemsOf(objectBranch, path));
        continue;
      }
    }
    out.push({ path: pathText(path), message: iss.message });
  }
  return out;
}
