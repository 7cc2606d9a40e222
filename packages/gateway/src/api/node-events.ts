// Node lifecycle and health events, reported three ways: a log line, a row in the
// metrics store, and an event on the gateway for code that embeds it.
import type { EventEmitter } from 'node:events';
import type { EasyRemoteError, Logger, NodeEventKind } from '@easyremote/protocol';
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
    private readonly logger: Logger,
  ) {}

  record(kind: NodeEventKind, nodeId: string, functionName = '', detail = ''): void {
    this.metrics.event({ nodeId, kind, functionName, detail });
    this.emitter.emit('node-event', { kind, nodeId, functionName, detail });
  }

  /** What the node-link service tells the rest of the gateway. */
  observer(): NodeLinkObserver {
    return {
      joined: (s) => {
        this.logger.info({ nodeId: s.nodeId, kind: s.kind, principal: s.principal, peer: s.peer, functions: s.functions.size, ...(s.direct ? { direct: s.direct } : {}) }, 'node joined');
        this.record('joined', s.nodeId, '', `from ${s.peer} as ${s.principal}`);
        this.emitter.emit('node-joined', s);
      },
      left: (s, clean) => {
        if (clean) this.logger.info({ nodeId: s.nodeId, kind: s.kind, reason: s.endReason }, 'node left');
        // The gateway's own stop ends every stream: expected, so not a warning.
        else if (s.endReason === 'gateway-shutdown') this.logger.info({ nodeId: s.nodeId, kind: s.kind, reason: s.endReason }, 'node lost');
        else this.logger.warn({ nodeId: s.nodeId, kind: s.kind, reason: s.endReason }, 'node lost');
        this.record(clean ? 'left' : 'lost', s.nodeId, '', s.endReason);
        this.emitter.emit('node-left', s, clean ? 'left' : 'lost');
      },
      refused: (nodeId, err, principal) => {
        const who = principal === undefined ? '' : ` (${principal})`;
        this.logger.warn({ nodeId, principal, code: err.code, reason: err.message }, 'node refused');
        this.record('refused', nodeId, '', `${err.code}${who}: ${err.message}`);
        this.emitter.emit('node-refused', nodeId, err);
      },
      dropped: (nodeId, err) => this.logger.warn({ nodeId, code: err.code, reason: err.message }, 'node frame dropped'),
      draining: (s, by) => {
        this.logger.info({ nodeId: s.nodeId, by }, 'node draining');
        this.record('draining', s.nodeId, '', by);
      },
    };
  }

  /** Ejections and readmissions by the outlier detector; `readmitted` is told once they are recorded. */
  watch(detector: OutlierDetector, clock: Clock, readmitted: (functionName: string) => void): void {
    detector.on('ejected', (e) => {
      this.logger.warn({ nodeId: e.nodeId, function: e.functionName, reason: e.reason, forMs: Math.round(e.untilMs - clock.now()) }, 'node ejected');
      this.record('ejected', e.nodeId, e.functionName, e.reason);
    });
    detector.on('readmitted', (e) => {
      this.logger.info({ nodeId: e.nodeId, function: e.functionName }, 'node readmitted');
      this.record('readmitted', e.nodeId, e.functionName);
      readmitted(e.functionName);
    });
  }
}
