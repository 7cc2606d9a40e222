// The `easyremote` command line: its commands, their flags, and how failures become exit
// statuses (see exit-codes.ts).
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import type { Io } from './io.js';
import { EXIT_FAILURE, EXIT_USAGE, exitCodeOf } from './exit-codes.js';
import { CALL_SETTINGS, runCall } from './commands/call.js';
import { runGateway } from './commands/gateway.js';
import { GATEWAY_SETTINGS } from './commands/gateway-settings.js';
import { NODE_SETTINGS, runNode } from './commands/node.js';
import { runStatus, STATUS_SETTINGS } from './commands/status.js';
import { runTop, TOP_SETTINGS } from './commands/top.js';
import { addSettingFlags, givenFlags } from './settings/flags.js';
import { describeProblem, SettingsError } from './settings/problems.js';

/** The package's version (src/ and dist/ both sit beside package.json). */
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** Runs the command line to its end; resolves with the exit status. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  let status = EXIT_FAILURE;
  let commandName = 'easyremote';
  const program = new Command('easyremote')
    .description('EasyRemote: run a gateway or a compute node, call remote functions, watch a cluster')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(run with --help for usage)');

  const start = (name: string, body: () => Promise<number>) => async () => {
    commandName = `easyremote ${name}`;
    status = await body();
  };

  const gateway = addSettingFlags(
    program
      .command('gateway')
      .description('run a gateway; settings from flags, then EASYREMOTE_* variables, then --config')
      .option('--config <file>', 'JSON configuration file with any GatewayOptions data field [env EASYREMOTE_CONFIG]'),
    GATEWAY_SETTINGS,
  );
  gateway.action(start('gateway', () => runGateway({ configPath: gateway.opts().config, flags: givenFlags(gateway, GATEWAY_SETTINGS) }, io)));

  const node = addSettingFlags(
    program.command('node').description('serve the @remote classes and functions a module exports').argument('<module>', 'ES module file (path or file: URL)'),
    NODE_SETTINGS,
  );
  node.action(start('node', () => runNode({ module: node.args[0]!, flags: givenFlags(node, NODE_SETTINGS) }, io)));

  const call = addSettingFlags(
    program
      .command('call')
      .description('call a function once; the result on stdout')
      .argument('<function>', 'function name')
      .argument('[args]', 'the arguments as a JSON array, e.g. \'[1, "a"]\' (default [])')
      .option('--stream', 'call a generator function and print each value it yields')
      .option('--json', 'print the result as one JSON document (streamed values: one JSON line each); errors as JSON on stderr'),
    CALL_SETTINGS,
  );
  call.action(
    start('call', () => {
      const o = call.opts();
      return runCall({ function: call.args[0]!, args: call.args[1], stream: o.stream === true, json: o.json === true, flags: givenFlags(call, CALL_SETTINGS) }, io);
    }),
  );

  const status_ = addSettingFlags(program.command('status').description('nodes, functions, load and alerts').option('--json', 'print one JSON document'), STATUS_SETTINGS);
  status_.action(start('status', () => runStatus({ json: status_.opts().json === true, flags: givenFlags(status_, STATUS_SETTINGS) }, io)));

  const top = addSettingFlags(program.command('top').description('a live view of nodes and call rates (q or Ctrl-C to quit)').option('--once', 'draw one frame and exit'), TOP_SETTINGS);
  top.action(start('top', () => runTop({ once: top.opts().once === true, flags: givenFlags(top, TOP_SETTINGS) }, io)));

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return status;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    if (err instanceof SettingsError) {
      io.stderr.write(`${commandName}: invalid settings:\n${err.problems.map((p) => `  ${describeProblem(p)}\n`).join('')}`);
      return EXIT_USAGE;
    }
    const e = err as Error & { code?: unknown };
    if (typeof e.code === 'string' && e.name !== 'Error' && exitCodeOf(e.code) !== EXIT_FAILURE) {
      io.stderr.write(`${commandName}: ${e.code}: ${e.message}\n`);
      return exitCodeOf(e.code);
    }
    io.stderr.write(`${commandName}: ${e.message ?? String(err)}\n`);
    return EXIT_FAILURE;
  }
}
