// `easyremote top`: a live view of nodes and call rates, redrawn in place until q or
// Ctrl-C. On a terminal it takes the alternate screen (what was there comes back on
// exit); elsewhere each frame is printed after the last, which is also what --once and
// --iterations make testable.
import { z } from 'zod';
import type { Io } from '../io.js';
import { EXIT_OK, exitCodeOf } from '../exit-codes.js';
import { topFrame } from '../output/cluster-view.js';
import { clientTls, CONNECTION_SETTINGS, connectionShape } from '../settings/connection.js';
import { resolveSettings, type SettingSpec } from '../settings/layers.js';
import { integer, ms } from '../settings/values.js';
import { readSnapshot, type ClusterSnapshot } from './cluster-snapshot.js';

export const DEFAULT_TOP_INTERVAL_MS = 2000;

export const TOP_SETTINGS: readonly SettingSpec[] = [
  ...CONNECTION_SETTINGS,
  { path: 'intervalMs', flag: 'interval', arg: '<ms>', env: 'EASYREMOTE_TOP_INTERVAL_MS', kind: 'number', help: `time between frames (default ${DEFAULT_TOP_INTERVAL_MS})` },
  { path: 'iterations', flag: 'iterations', arg: '<n>', kind: 'number', help: 'draw this many frames, then exit' },
];

const topSchema = z.strictObject({
  ...connectionShape,
  intervalMs: ms(1).default(DEFAULT_TOP_INTERVAL_MS),
  iterations: integer(1).optional(),
});

const ENTER_SCREEN = '\x1b[?1049h\x1b[?25l';
const LEAVE_SCREEN = '\x1b[?25h\x1b[?1049l';
const HOME_AND_CLEAR = '\x1b[H\x1b[2J';

export async function runTop(input: { once: boolean; flags: ReadonlyMap<string, unknown> }, io: Io): Promise<number> {
  const settings = resolveSettings(topSchema, TOP_SETTINGS, { env: io.env, flags: input.flags });
  const iterations = input.once ? 1 : settings.iterations;
  const { AdminClient, EasyRemoteError } = await import('@easyremote/client');
  const admin = new AdminClient(settings.gateway, { token: settings.token, tls: clientTls(settings.tls), timeoutMs: Math.max(1000, settings.intervalMs) });
  const live = io.stdout.isTTY === true && iterations !== 1;

  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onKey = (key: Buffer) => {
    const k = key.toString();
    if (k === 'q' || k === 'Q' || k === '\u0003') stop();
  };
  const onSignal = () => stop();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const rawKeys = live && io.stdin.isTTY === true;
  if (rawKeys) {
    io.stdin.setRawMode(true);
    io.stdin.on('data', onKey);
    io.stdin.resume();
  }
  if (live) io.stdout.write(ENTER_SCREEN);
  let before: ClusterSnapshot | undefined;
  let status = EXIT_OK;
  try {
    for (let frame = 1; iterations === undefined || frame <= iterations; frame++) {
      let text: string;
      try {
        const now = await readSnapshot(admin);
        text = topFrame(now, before, `easyremote top${live ? ' (q to quit)' : ''}`);
        before = now;
      } catch (err) {
        if (!(err instanceof EasyRemoteError)) throw err;
        // A gateway restarting is shown, not fatal, while the view runs on.
        if (iterations !== undefined && frame === iterations) status = exitCodeOf(err.code);
        text = `easyremote top — ${settings.gateway}: ${err.code}: ${err.message}\n`;
      }
      io.stdout.write(live ? HOME_AND_CLEAR + text : `${text}\n`);
      if (iterations !== undefined && frame === iterations) break;
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), settings.intervalMs)));
      const why = await Promise.race([tick, stopped.then(() => 'stop' as const)]);
      clearTimeout(timer);
      if (why === 'stop') break;
    }
  } finally {
    if (live) io.stdout.write(LEAVE_SCREEN);
    if (rawKeys) {
      io.stdin.off('data', onKey);
      io.stdin.setRawMode(false);
      io.stdin.pause();
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    admin.close();
  }
  return status;
}
