// `easyremote status`: nodes, functions, load and alerts, once.
import type { Io } from '../io.js';
import { EXIT_OK } from '../exit-codes.js';
import { statusText } from '../output/cluster-view.js';
import { clientTls, CONNECTION_SETTINGS, connectionSchema } from '../settings/connection.js';
import { resolveSettings } from '../settings/layers.js';
import { readSnapshot } from './cluster-snapshot.js';

export const STATUS_SETTINGS = CONNECTION_SETTINGS;

export async function runStatus(input: { json: boolean; flags: ReadonlyMap<string, unknown> }, io: Io): Promise<number> {
  const settings = resolveSettings(connectionSchema, STATUS_SETTINGS, { env: io.env, flags: input.flags });
  const { AdminClient } = await import('@easyremote/client');
  const admin = new AdminClient(settings.gateway, { token: settings.token, tls: clientTls(settings.tls) });
  try {
    const snapshot = await readSnapshot(admin);
    io.stdout.write(input.json ? `${JSON.stringify(snapshot)}\n` : statusText(snapshot));
    return EXIT_OK;
  } finally {
    admin.close();
  }
}
