// Evaluates the alert conditions on a timer and keeps the alert log up to date.
import type { Clock, TimerHandle } from '../clock.js';
import { evaluateAlerts, type AdvisorThresholds, type AlertLog, type SystemFigures } from './advisor.js';

/** How often alerts are evaluated. */
export const DEFAULT_ALERT_INTERVAL_MS = 10_000;

export class AlertLoop {
  private timer: TimerHandle | undefined;

  constructor(
    private readonly log: AlertLog,
    private readonly figures: () => SystemFigures,
    private readonly thresholds: AdvisorThresholds,
    private readonly clock: Clock,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Checks the alert conditions now. */
  evaluate(): void {
    try {
      this.log.update(evaluateAlerts(this.figures(), this.thresholds));
    } catch (err) {
      this.onError(err as Error);
    }
  }

  start(intervalMs: number = DEFAULT_ALERT_INTERVAL_MS): void {
    const tick = () => {
      this.evaluate();
      this.timer = this.clock.setTimeout(tick, intervalMs);
    };
    this.timer = this.clock.setTimeout(tick, intervalMs);
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
  }
}
