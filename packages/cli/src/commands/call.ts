// `easyremote call <function> [args]`: one call through the gateway; the result on
// stdout, errors on stderr, and an exit status per error code.
import { z } from 'zod';
import type { Io } from '../io.js';
import { EXIT_FAILURE, EXIT_OK, exitCodeOf } from '../exit-codes.js';
import { humanText, jsonLine, toJsonValue } from '../output/json-value.js';
import { ProgressBar } from '../output/progress-bar.js';
import { clientTls, CONNECTION_SETTINGS, connectionShape } from '../settings/connection.js';
import { resolveSettings, type SettingSpec } from '../settings/layers.js';
import { SettingsError } from '../settings/problems.js';
import { gatewayList, ms, shown, text } from '../settings/values.js';

export const CALL_SETTINGS: readonly SettingSpec[] = [
  ...CONNECTION_SETTINGS,
  { path: 'timeout', flag: 'timeout', arg: '<ms>', kind: 'number', help: 'time limit of the call (the node is told to cancel when it passes)' },
  { path: 'strategy', flag: 'strategy', arg: '<name>', kind: 'string', help: 'routing strategy for this call only' },
];

const callSchema = z.strictObject({
  ...connectionShape,
  timeout: ms(1).optional(),
  strategy: text('a strategy name (a non-empty string)').optional(),
});

export interface CallCommandInput {
  readonly function: string;
  /** The arguments as a JSON array; none: no arguments. */
  readonly args: string | undefined;
  readonly stream: boolean;
  readonly json: boolean;
  readonly flags: ReadonlyMap<string, unknown>;
}

function parseArgs(argsText: string | undefined): unknown[] {
  if (argsText === undefined) return [];
  let args: unknown;
  try {
    args = JSON.parse(argsText);
  } catch (err) {
    throw new SettingsError([{ path: 'args', message: `expected a JSON array of arguments (e.g. '[1, "a"]'), got ${shown(argsText)} (${(err as Error).message})` }]);
  }
  if (!Array.isArray(args)) throw new SettingsError([{ path: 'args', message: `expected a JSON array of arguments (e.g. '[1, "a"]'), got ${shown(args)}` }]);
  return args;
}

/** What an error looks like in --json mode (one line on stderr). */
function errorDocument(err: Error & { code?: string; retryable?: boolean; nodeId?: string; retryAfterMs?: number; remoteName?: string; remoteStack?: string }) {
  return {
    error: {
      code: err.code ?? 'INTERNAL',
      message: err.message,
      retryable: err.retryable ?? false,
      ...(err.nodeId !== undefined && { nodeId: err.nodeId }),
      ...(err.retryAfterMs !== undefined && { retryAfterMs: err.retryAfterMs }),
      ...(err.remoteName !== undefined && { remoteName: err.remoteName }),
      ...(err.remoteStack !== undefined && { remoteStack: err.remoteStack }),
    },
  };
}

export async function runCall(input: CallCommandInput, io: Io): Promise<number> {
  const settings = resolveSettings(callSchema, CALL_SETTINGS, { env: io.env, flags: input.flags });
  const args = parseArgs(input.args);
  if (input.function === '') throw new SettingsError([{ path: 'function', message: 'expected a function name, got ""' }]);
  const { Client, EasyRemoteError } = await import('@easyremote/client');
  const client = new Client(gatewayList(settings.gateway), { token: settings.token, tls: clientTls(settings.tls) });
  const bar = io.stderr.isTTY ? new ProgressBar(io.stderr) : undefined;
  const options = { timeout: settings.timeout, strategy: settings.strategy, onProgress: bar && ((fraction: number, message: string) => bar.update(fraction, message)) };
  const show = (value: unknown) => {
    bar?.clear();
    io.stdout.write(input.json ? jsonLine(value) : humanText(value));
  };
  try {
    if (input.stream) {
      for await (const value of client.stream(input.function, args, options)) show(value);
      bar?.clear();
    } else {
      show(await client.call(input.function, args, options));
    }
    return EXIT_OK;
  } catch (err) {
    bar?.clear();
    const e = err instanceof Error ? err : new Error(String(err));
    if (!(e instanceof EasyRemoteError)) {
      // Not the call's outcome: the client itself failed (a TLS file that cannot be read, ...).
      io.stderr.write(input.json ? `${JSON.stringify({ error: { code: 'FAILURE', message: e.message, retryable: false } })}\n` : `easyremote call: ${e.message}\n`);
      return EXIT_FAILURE;
    }
    if (input.json) io.stderr.write(`${JSON.stringify(toJsonValue(errorDocument(e)))}\n`);
    else io.stderr.write(`easyremote call: ${e.code}: ${'remoteName' in e && e.remoteName ? `${String(e.remoteName)}: ` : ''}${e.message}\n`);
    return exitCodeOf(e.code);
  } finally {
    client.close();
  }
}
