// What happens when a call finishes, whatever finished it: its caller's slot is freed,
// it stops counting as open (a stopping gateway waits for open calls), and it is recorded.
import type { PrincipalLimits } from '../auth/principal-limits.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import type { CallRecorder } from './dispatcher.js';
import type { OpenCalls } from './open-calls.js';
import type { PendingCall } from './pending-call.js';

export class FinishedCalls implements CallRecorder {
  constructor(
    private readonly limits: PrincipalLimits,
    private readonly open: OpenCalls,
    private readonly metrics: MetricsRecorder,
  ) {}

  callFinished(call: PendingCall, errorCode: string, cached?: boolean): void {
    this.limits.release(call.caller);
    this.open.closed();
    this.metrics.callFinished(call, errorCode, cached);
  }
}
