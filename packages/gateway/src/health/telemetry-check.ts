// Telemetry arrives from nodes written in any language, from sensors that misreport. A
// figure that cannot be true (NaN, infinite, negative, above its total) is never handed
// to routing: the whole sample is dropped and the node is flagged with the reason.
import { MAX_GPUS_PER_NODE, type Heartbeat } from '@easyremote/protocol';
import type { TelemetrySnapshot } from '../strategies/strategy.js';

export type TelemetryVerdict = { readonly ok: true; readonly telemetry: TelemetrySnapshot } | { readonly ok: false; readonly problem: string };

function isCount(x: number): boolean {
  return Number.isFinite(x) && x >= 0;
}

function isPercent(x: number): boolean {
  return Number.isFinite(x) && x >= 0 && x <= 100;
}

/** The heartbeat's figures as a snapshot, or why they cannot be used. */
export function checkTelemetry(hb: Heartbeat, receivedAt: number): TelemetryVerdict {
  const bad = (problem: string): TelemetryVerdict => ({ ok: false, problem });
  if (!isPercent(hb.cpuPercent)) return bad(`cpuPercent ${hb.cpuPercent} is not within 0..100`);
  if (!isCount(hb.memoryTotalBytes) || !isCount(hb.memoryUsedBytes)) return bad(`memory figures ${hb.memoryUsedBytes}/${hb.memoryTotalBytes} are not byte counts`);
  if (hb.memoryTotalBytes > 0 && hb.memoryUsedBytes > hb.memoryTotalBytes) return bad(`memoryUsedBytes ${hb.memoryUsedBytes} exceeds memoryTotalBytes ${hb.memoryTotalBytes}`);
  if (hb.gpus.length > MAX_GPUS_PER_NODE) return bad(`${hb.gpus.length} GPUs; the limit is ${MAX_GPUS_PER_NODE}`);
  for (const g of hb.gpus) {
    if (!isPercent(g.utilizationPercent)) return bad(`GPU ${g.index} utilizationPercent ${g.utilizationPercent} is not within 0..100`);
    if (!isCount(g.vramTotalBytes) || !isCount(g.vramUsedBytes)) return bad(`GPU ${g.index} VRAM figures are not byte counts`);
    if (g.vramTotalBytes > 0 && g.vramUsedBytes > g.vramTotalBytes) return bad(`GPU ${g.index} vramUsedBytes exceeds vramTotalBytes`);
  }
  return {
    ok: true,
    telemetry: { cpuPercent: hb.cpuPercent, memoryUsedBytes: hb.memoryUsedBytes, memoryTotalBytes: hb.memoryTotalBytes, gpus: hb.gpus, receivedAt },
  };
}
