// `easyremote node <module>`: serves what a module exports until SIGTERM or SIGINT, then
// drains (running calls finish and their results are delivered) and exits.
import { z } from 'zod';
import type { Io } from '../io.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { loadModuleServices } from '../module-services.js';
import { CONNECTION_SETTINGS, connectionShape, nodeTls, tlsShape } from '../settings/connection.js';
import { resolveSettings, type SettingSpec } from '../settings/layers.js';
import { expecting, filePath, gatewayList, integer, labels, ms, text } from '../settings/values.js';

export const NODE_SETTINGS: readonly SettingSpec[] = [
  ...CONNECTION_SETTINGS,
  { path: 'nodeId', flag: 'id', arg: '<id>', env: 'EASYREMOTE_NODE_ID', kind: 'string', help: "this node's id (default: the one its certificate names, else hostname-pid)" },
  { path: 'labels', flag: 'label', arg: '<key=value>', env: 'EASYREMOTE_LABELS', kind: 'pairs', help: 'a label (location, zone, ...); repeat for more; the variable takes key=value,key=value' },
  { path: 'maxConcurrent', flag: 'max-concurrent', arg: '<n>', env: 'EASYREMOTE_MAX_CONCURRENT', kind: 'number', help: 'calls running at once on this node, all functions together' },
  { path: 'tls.cert', flag: 'tls-cert', arg: '<file>', env: 'EASYREMOTE_NODE_CERT', kind: 'string', help: "the node's certificate (PEM file), for gateways that require one" },
  { path: 'tls.key', flag: 'tls-key', arg: '<file>', env: 'EASYREMOTE_NODE_KEY', kind: 'string', help: "the node certificate's private key (PEM file)" },
  { path: 'connectTimeoutMs', flag: 'connect-timeout-ms', arg: '<ms>', env: 'EASYREMOTE_CONNECT_TIMEOUT_MS', kind: 'number', help: 'give up when no gateway accepted the node within this long (0: never; default 30000)' },
  { path: 'heapHeadroomBytes', flag: 'heap-headroom-bytes', arg: '<bytes>', env: 'EASYREMOTE_HEAP_HEADROOM_BYTES', kind: 'number', help: 'heap growth V8 allows between full collections (0: V8 chooses; default 67108864)' },
  { path: 'logger.level', flag: 'log-level', arg: '<level>', env: 'EASYREMOTE_LOG_LEVEL', kind: 'string', help: 'fatal, error, warn, info (default), debug, trace or silent' },
  { path: 'logger.format', flag: 'log-format', arg: '<format>', env: 'EASYREMOTE_LOG_FORMAT', kind: 'string', help: 'json, or pretty (default on a terminal)' },
];

const nodeSchema = z.strictObject({
  ...connectionShape,
  nodeId: text('a node id (a non-empty string)').optional(),
  labels: labels().optional(),
  maxConcurrent: integer(1).optional(),
  tls: z.strictObject({ ...tlsShape, cert: filePath().optional(), key: filePath().optional() }).optional(),
  connectTimeoutMs: ms(0).optional(),
  heapHeadroomBytes: integer(0).optional(),
  logger: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], expecting('a log level (fatal, error, warn, info, debug, trace or silent)')).optional(),
      format: z.enum(['json', 'pretty'], expecting('a log format (json or pretty)')).optional(),
    })
    .optional(),
});

export interface NodeCommandInput {
  readonly module: string;
  readonly flags: ReadonlyMap<string, unknown>;
}

/** Resolves with the exit status once the node has stopped. */
export async function runNode(input: NodeCommandInput, io: Io): Promise<number> {
  const settings = resolveSettings(nodeSchema, NODE_SETTINGS, { env: io.env, flags: input.flags });
  const { ComputeNode, drainOnSignals, remoteMethodsOf } = await import('@easyremote/node');
  const services = await loadModuleServices(input.module, remoteMethodsOf);
  const node = new ComputeNode({
    gateways: gatewayList(settings.gateway),
    nodeId: settings.nodeId,
    token: settings.token,
    labels: settings.labels,
    maxConcurrent: settings.maxConcurrent,
    tls: nodeTls(settings.tls),
    connectTimeoutMs: settings.connectTimeoutMs,
    heapHeadroomBytes: settings.heapHeadroomBytes,
    logger: settings.logger,
  });
  for (const { instance } of services.instances) node.serve(instance);
  for (const { name, fn } of services.functions) node.register(name, fn as never);
  // The node logs its lifecycle itself (stderr); the helper's lines go to the same logger.
  let end!: (status: number) => void;
  const stopped = new Promise<number>((resolve) => (end = resolve));
  drainOnSignals(node, { exit: end });
  node.on('stopped', ({ reason }) => {
    // A refusal for good closes that gateway's link only; the node stops, and the command
    // fails, once no gateway is left. Drained (a gateway asked it to): done once its last
    // results are sent. A stop from a signal is the signal handler's to end.
    if (reason === 'refused' || reason === 'connect timeout') end(EXIT_FAILURE);
    else if (reason === 'drained') void node.drain().then(() => end(EXIT_OK));
  });
  try {
    await node.start();
  } catch (err) {
    io.stderr.write(`easyremote node: ${(err as Error).message}\n`);
    await node.stop();
    return EXIT_FAILURE;
  }
  const names = [...services.instances.flatMap(({ instance }) => remoteMethodsOf(instance).map((m) => m.options.name ?? m.key)), ...services.functions.map((f) => f.name)];
  io.stdout.write(`node ${node.nodeId} serving ${names.join(', ')} through ${settings.gateway}\n`);
  return stopped;
}
