// Node lifecycle and health events, reported three ways: a log line, a row in the
// metrics store, and an event on the gateway for code that embeds it.
import type { EventEmitter } from 'node:events';
import type { EasyRemoteError, NodeEventKind } from '@easyremote/protocol';
import type { Clock } from '../clock.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import type { NodeSession } from '../registry/node-session.js';
import type { NodeLinkObserver } from './node-link-service.js';

export interface GatewayEvents {
  'node-joined': [NodeSession];
  'node-left': [NodeSession, 'left' | 'lost'];
  'node-refused': [string, EasyRemoteError];
  /** Every node lifecycle and health event, for metrics and operators. */
  'node-event': [{ kind: NodeEventKind; nodeId: string; functionName: string; detail: string }];
}

export class NodeEvents {
  constructor(
    private readonly emitter: EventEmitter<GatewayEvents>,
    private readonly metrics: Pick<MetricsRecorder, 'event'>,
    private readonly log: (line: string) => void,
  ) {}

  record(kind: NodeEventKind, nodeId: string, functionName = '', detail = ''): void {
    this.metrics.event({ nodeId, kind, functionName, detail });
    this.emitter.emit('node-event', { kind, nodeId, functionName, detail });
  }

  /** Ejections and readmissions: logged and recorded; a readmitted pair's function may route again (`readmitted`). */
  watch(detector: OutlierDetector, clock: Clock, readmitted: (functionName: string) => void): void {
    detector.on('ejected', (e) => {
      this.log(`node ${e.nodeId} ejected for ${e.functionName} (${e.reason}) for ${Math.round(e.untilMs - clock.now())} ms`);
      this.record('ejected', e.nodeId, e.functionName, e.reason);
    });
    detector.on('readmitted', (e) => {
      this.log(`node ${e.nodeId} readmitted for ${e.functionName}`);
      this.record('readmitted', e.nodeId, e.functionName);
      readmitted(e.functionName);
    });
  }

  /** What the node-link service tells the rest of the gateway. */
  observer(): NodeLinkObserver {
    return {
      joined: (s) => {
        this.log(`node ${s.nodeId} joined from ${s.peer} as ${s.principal}`);
        this.record('joined', s.nodeId, '', `from ${s.peer} as ${s.principal}`);
        this.emitter.emit('node-joined', s);
      },
      left: (s, clean) => {
        this.log(`node ${s.nodeId} ${clean ? 'left' : `lost (${s.endReason})`}`);
        this.record(clean ? 'left' : 'lost', s.nodeId, '', s.endReason);
        this.emitter.emit('node-left', s, clean ? 'left' : 'lost');
      },
      refused: (nodeId, err, principal) => {
        const who = principal === undefined ? '' : ` (${principal})`;
        this.log(`refused node ${nodeId}${who}: ${err.message}`);
        this.record('refused', nodeId, '', `${err.code}${who}: ${err.message}`);
        this.emitter.emit('node-refused', nodeId, err);
      },
      dropped: (nodeId, err) => this.log(`dropped a frame from node ${nodeId}: ${err.message}`),
      draining: (s, by) => this.record('draining', s.nodeId, '', by),
    };
  }
}
