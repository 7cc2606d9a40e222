// docs/cli.md is what operators and scripts are written from: its tables of flags,
// variables, configuration fields and exit statuses are checked against the code here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gatewayConfigSchema } from '@easyremote/gateway';
import { CALL_SETTINGS, ERROR_EXIT_CODES, GATEWAY_SETTINGS, NODE_SETTINGS, TOP_SETTINGS, type SettingSpec } from '../src/index.js';
import { DEFAULT_TOP_INTERVAL_MS } from '../src/commands/top.js';
import { DEFAULT_GATEWAY_ADDRESS } from '../src/settings/connection.js';

const DOC = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');

/** The body rows of the tables in a section (from its heading to the next heading of the same or a higher level). */
function rows(heading: string): string[][] {
  const start = DOC.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no section ${heading}`);
  const level = heading.split(' ')[0]!.length;
  const rest = DOC.slice(start + heading.length + 2);
  const end = rest.search(new RegExp(`^#{1,${level}} `, 'm'));
  return (end < 0 ? rest : rest.slice(0, end))
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
    .slice(1)
    .map((l) => l.slice(2, -2).split(' | ').map((c) => c.trim()));
}

const flagText = (s: SettingSpec) => (s.flag === undefined ? '—' : `\`--${s.flag}${s.kind === 'bool' ? '' : ` ${s.arg ?? '<value>'}`}\``);
const envText = (s: SettingSpec) => (s.env === undefined ? '—' : `\`${s.env}\``);

describe('docs/cli.md', () => {
  it('the gateway table has one row per setting: its field, flag and variable', () => {
    const documented = rows('### Flags and variables').map(([field, flag, env]) => `${field} ${flag} ${env}`);
    expect(documented).toEqual(GATEWAY_SETTINGS.map((s) => `\`${s.path}\` ${flagText(s)} ${envText(s)}`));
  });

  it('the configuration file table lists every field of the schema', () => {
    const documented = rows('### The configuration file').map(([field]) => field!.replaceAll('`', ''));
    expect(documented).toEqual(Object.keys(gatewayConfigSchema.shape));
  });

  it("the node's table names every flag and variable it reads", () => {
    const documented = rows('## `easyremote node <module>`').map(([flag, env]) => `${flag} ${env}`);
    expect(documented.sort()).toEqual(NODE_SETTINGS.map((s) => `${flagText(s)} ${envText(s)}`).sort());
    expect(DOC).toContain(`the gateway (default \`${DEFAULT_GATEWAY_ADDRESS}\`)`);
  });

  it("call's and top's flags and variables are all named", () => {
    for (const s of [...CALL_SETTINGS, ...TOP_SETTINGS]) {
      if (s.flag !== undefined) expect(DOC).toContain(`--${s.flag}`);
      if (s.env !== undefined) expect(DOC).toContain(s.env);
    }
    expect(DOC).toContain(`(\`EASYREMOTE_TOP_INTERVAL_MS\`, default ${DEFAULT_TOP_INTERVAL_MS})`);
  });

  it('the exit statuses are the code’s', () => {
    const documented = Object.fromEntries(rows('## Exit statuses').filter(([status]) => Number(status) >= 10).map(([status, code]) => [code!.replaceAll('`', ''), Number(status)]));
    expect(documented).toEqual(ERROR_EXIT_CODES);
  });
});
