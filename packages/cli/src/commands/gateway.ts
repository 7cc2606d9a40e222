// `easyremote gateway`: runs a gateway until SIGTERM or SIGINT, then stops it gracefully.
import { readFileSync } from 'node:fs';
import type { Io } from '../io.js';
import { EXIT_FAILURE, EXIT_USAGE } from '../exit-codes.js';
import { resolveSettings } from '../settings/layers.js';
import { SettingsError } from '../settings/problems.js';
import { CLI_SHUTDOWN_GRACE_MS, GATEWAY_SETTINGS } from './gateway-settings.js';

export interface GatewayCommandInput {
  /** --config, else EASYREMOTE_CONFIG. */
  readonly configPath: string | undefined;
  readonly flags: ReadonlyMap<string, unknown>;
}

function readConfigFile(path: string): { label: string; document: unknown } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SettingsError([{ path: '', message: `cannot read the configuration file: ${(err as Error).message}`, source: path }]);
  }
  try {
    return { label: path, document: JSON.parse(text) };
  } catch (err) {
    throw new SettingsError([{ path: '', message: `the configuration file is not JSON: ${(err as Error).message}`, source: path }]);
  }
}

/** Resolves with the exit status once the gateway has stopped. */
export async function runGateway(input: GatewayCommandInput, io: Io): Promise<number> {
  // Loaded here, not at the top: the other commands do not pay for the gateway's modules.
  const { Gateway, gatewayConfigSchema, stopOnSignals } = await import('@easyremote/gateway');
  const configPath = input.configPath ?? (io.env.EASYREMOTE_CONFIG || undefined);
  const file = configPath === undefined ? undefined : readConfigFile(configPath);
  const config = resolveSettings(gatewayConfigSchema, GATEWAY_SETTINGS, { file, env: io.env, flags: input.flags });
  let gateway: InstanceType<typeof Gateway>;
  try {
    gateway = new Gateway({ ...config, shutdownGraceMs: config.shutdownGraceMs ?? CLI_SHUTDOWN_GRACE_MS });
  } catch (err) {
    // What the schema cannot see (a function's strategy options, certificate files) is refused here.
    io.stderr.write(`easyremote gateway: ${(err as Error).message}\n`);
    return EXIT_USAGE;
  }
  // The helper's lines, like the gateway's, go to its logger (stderr).
  const stopped = new Promise<number>((resolve) => stopOnSignals(gateway, { exit: resolve }));
  try {
    await gateway.start();
  } catch (err) {
    io.stderr.write(`easyremote gateway: ${(err as Error).message}\n`);
    await gateway.stop({ graceMs: 0 }).catch(() => undefined);
    return EXIT_FAILURE;
  }
  const http = gateway.httpPort > 0 ? `, HTTP API on ${gateway.settings.host}:${gateway.httpPort}` : '';
  io.stdout.write(`gateway listening on ${gateway.address}${http}\n`);
  return stopped;
}
