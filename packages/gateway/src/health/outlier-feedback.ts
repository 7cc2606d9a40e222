// Feeds attempt outcomes to the outlier detector, for functions that have outlier
// detection on: the detector judges nodes only by what their calls did.
import type { Attempt, AttemptListener, AttemptOutcome } from '../calls/attempt.js';
import type { OutlierDetector } from './outlier-detector.js';

export class OutlierFeedback implements AttemptListener {
  constructor(private readonly detector: OutlierDetector) {}

  attemptStarted(a: Attempt): void {
    const nodeId = a.provider.session.nodeId;
    const fn = a.call.entry.name;
    // A call sent to a half-open pair is its probe.
    if (a.call.entry.config.healthCheck.enabled && this.detector.state(nodeId, fn) === 'half_open') this.detector.onDispatch(nodeId, fn);
  }

  attemptFinished({ attempt, ok, countsForHealth }: AttemptOutcome): void {
    if (!attempt.call.entry.config.healthCheck.enabled) return;
    const nodeId = attempt.provider.session.nodeId;
    const fn = attempt.call.entry.name;
    if (countsForHealth || ok) this.detector.record(nodeId, fn, ok);
    // An outcome that says nothing about the node (a cancel, bad input) frees a probe slot it held.
    else this.detector.releaseProbe(nodeId, fn);
  }
}
