// Setting rows as commander options, and what the command line gave for them.
import { Option, type Command } from 'commander';
import type { SettingSpec } from './layers.js';

export function addSettingFlags(command: Command, specs: readonly SettingSpec[]): Command {
  for (const spec of specs) {
    if (spec.flag === undefined) continue;
    const flags = spec.kind === 'bool' ? `--${spec.flag}` : `--${spec.flag} ${spec.arg ?? '<value>'}`;
    const option = new Option(flags, spec.env === undefined ? spec.help : `${spec.help} [env ${spec.env}]`);
    // Given several times, every value counts (labels); any other flag keeps its last.
    if (spec.kind === 'pairs') option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    command.addOption(option);
  }
  return command;
}

/** The flags given on the command line, by flag name; a flag without a value (`--insecure`, `--no-metrics`) as true. */
export function givenFlags(command: Command, specs: readonly SettingSpec[]): Map<string, unknown> {
  const given = new Map<string, unknown>();
  const values = command.opts();
  for (const spec of specs) {
    if (spec.flag === undefined) continue;
    const key = new Option(`--${spec.flag}`).attributeName();
    if (command.getOptionValueSource(key) !== 'cli') continue;
    given.set(spec.flag, spec.kind === 'bool' ? true : values[key]);
  }
  return given;
}
