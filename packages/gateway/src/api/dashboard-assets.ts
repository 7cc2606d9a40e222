// Where the dashboard's files are on disk: its own page and modules (the `dashboard`
// folder of this package) and the ES module builds of preact, htm and uPlot, found in
// whichever node_modules the package manager put them, as Node resolves them from this
// package. Nothing is built or fetched at run time.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTENT_TYPES, type StaticEntry } from './static-files.js';

const PACKAGE_NAME = '@easyremote/gateway';
/** URL path of the page. */
export const DASHBOARD_PAGE = '/';
/** URL prefix of the page's modules, styles and libraries. */
export const DASHBOARD_PREFIX = '/dashboard/';

/**
 * The page loads scripts, styles and data from the gateway alone: no inline script or
 * style, no other origin, no framing (clickjacking a drain button), no forms, no plugins.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Headers sent with every dashboard file. */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** The nearest folder at or above `from` whose package.json is named `name`. */
function packageRoot(from: string, name: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === name) return dir;
    } catch {
      // No package.json here (or not JSON): keep climbing.
    }
    if (dirname(dir) === dir) throw new Error(`no package.json named ${name} above ${from}`);
  }
}

/** A library's browser ES module (its package.json `module`), as installed beside this package. */
function moduleOf(require: NodeJS.Require, name: string): { root: string; module: string } {
  const root = packageRoot(require.resolve(name), name);
  const { module } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { module?: string };
  if (typeof module !== 'string') throw new Error(`${name} declares no ES module build ("module" in its package.json)`);
  return { root, module: join(root, module) };
}

/** An entry whose file could not be found answers 500 with the reason instead of stopping the gateway. */
function entry(urlPath: string, find: () => string): StaticEntry {
  try {
    return { urlPath, filePath: find() };
  } catch (err) {
    return { urlPath, filePath: '', problem: (err as Error).message };
  }
}

/** Every file of the dashboard with the path it is served at. */
export function dashboardAssets(): StaticEntry[] {
  const here = fileURLToPath(import.meta.url);
  const require = createRequire(here);
  let folder = '';
  let own: string[] = [];
  try {
    folder = join(packageRoot(here, PACKAGE_NAME), 'dashboard');
    own = readdirSync(folder, { withFileTypes: true })
      .filter((e) => e.isFile() && e.name !== 'index.html' && CONTENT_TYPES[extname(e.name)] !== undefined)
      .map((e) => e.name);
  } catch (err) {
    return [{ urlPath: DASHBOARD_PAGE, filePath: '', problem: `the dashboard's files are missing: ${(err as Error).message}` }];
  }
  return [
    { urlPath: DASHBOARD_PAGE, filePath: join(folder, 'index.html') },
    ...own.map((name) => ({ urlPath: `${DASHBOARD_PREFIX}${name}`, filePath: join(folder, name) })),
    entry(`${DASHBOARD_PREFIX}vendor/preact.mjs`, () => moduleOf(require, 'preact').module),
    entry(`${DASHBOARD_PREFIX}vendor/htm.mjs`, () => moduleOf(require, 'htm').module),
    entry(`${DASHBOARD_PREFIX}vendor/uplot.mjs`, () => moduleOf(require, 'uplot').module),
    entry(`${DASHBOARD_PREFIX}vendor/uplot.css`, () => join(moduleOf(require, 'uplot').root, 'dist', 'uPlot.min.css')),
  ];
}
