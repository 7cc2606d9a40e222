// The document the gateway pushes to its dashboard once a second (GET /api/events, as
// server-sent events): everything the page shows, in one object, so a page that has just
// connected draws the whole picture from its first message.
import type { AlertsDocument, LiveSnapshot, NodeInfo, OptimisationReport, WindowFigures } from './admin-documents.js';

/** One bucket of the live figures (a second by default): one point of the dashboard's charts. */
export interface LiveBucket {
  /** Epoch ms when the bucket began. */
  at: number;
  /** The bucket's length in seconds (ratePerSecond = calls / seconds). */
  seconds: number;
  overall: WindowFigures;
  /** Only functions with calls that ended in the bucket. */
  functions: Array<WindowFigures & { functionName: string }>;
}

export interface DashboardNode extends NodeInfo {
  /** Call slots the node declared over all its functions; 0 when any of them is unlimited. */
  slots: number;
}

export interface DashboardFunction {
  name: string;
  strategy: string;
  kind: 'unary' | 'stream';
  /** Nodes that serve it. */
  providers: number;
  /** Attempts running on its providers now. */
  inFlight: number;
  /** Calls waiting at the gateway for a provider with room. */
  queued: number;
}

export interface DashboardSnapshot {
  /** Epoch ms when the snapshot was taken. */
  at: number;
  nodes: DashboardNode[];
  functions: DashboardFunction[];
  /** The last complete bucket of the live figures: the charts' newest point. */
  bucket: LiveBucket;
  /** The live window (the last minute): per-function and per-node figures, and the distribution of calls since start. */
  live: LiveSnapshot;
  /** Active alerts and the 20 newest recent ones (resolved included), newest first. */
  alerts: AlertsDocument;
  recommendations: OptimisationReport;
}
