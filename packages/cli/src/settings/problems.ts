// Settings refused: each problem names the setting's path, what was expected and what was
// given, and where the value came from (a flag, an environment variable, the file).
import type { z } from 'zod';

export interface Problem {
  /** e.g. `httpPort`, `tls.cert`, `auth.principals[0].role`; '' for the whole document. */
  readonly path: string;
  readonly message: string;
  /** `--http-port`, `EASYREMOTE_HTTP_PORT`, the file's path; absent for a value nobody gave (a required one missing). */
  readonly source?: string;
}

export class SettingsError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(problems.map(describeProblem).join('\n'));
    this.name = 'SettingsError';
  }
}

export function describeProblem(p: Problem): string {
  return `${p.path === '' ? '' : `${p.path}: `}${p.message}${p.source === undefined ? '' : ` (from ${p.source})`}`;
}

/** `a.b[0].c` from zod's path segments. */
export function pathText(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? String(seg) : `.${String(seg)}`;
  return out;
}

/**
 * Zod's issues with their full paths. A value that may be of several kinds (false or an
 * object) and is an object is judged as the object: its own fields' issues are reported.
 */
export function flatIssues(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): Array<{ path: PropertyKey[]; message: string }> {
  const out: Array<{ path: PropertyKey[]; message: string }> = [];
  for (const iss of issues) {
    const path = [...prefix, ...iss.path];
    if (iss.code === 'invalid_union' && typeof iss.input === 'object' && iss.input !== null) {
      const objectBranch = iss.errors.find((branch) => branch.every((b) => b.path.length > 0 || b.code === 'unrecognized_keys'));
      if (objectBranch !== undefined) {
        out.push(...flatIssues(objectBranch, path));
        continue;
      }
    }
    out.push({ path, message: iss.message });
  }
  return out;
}
