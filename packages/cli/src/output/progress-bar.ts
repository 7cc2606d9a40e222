// A progress bar on one terminal line, redrawn in place: "[#####-----]  50% message".
const BAR_WIDTH = 30;
const MIN_COLUMNS = 20;

/** The line for a fraction (clamped to 0..1) and a message, cut to the terminal's width. */
export function progressLine(fraction: number, message: string, columns = 80): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = Math.round(f * BAR_WIDTH);
  const line = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(f * 100)).padStart(3)}%${message ? ` ${message}` : ''}`;
  return line.slice(0, Math.max(MIN_COLUMNS, columns - 1));
}

export class ProgressBar {
  private shown = false;

  constructor(private readonly out: { write(text: string): unknown; readonly columns?: number }) {}

  update(fraction: number, message: string): void {
    // \r back to the line's start, \x1b[K clears what a longer line left.
    // A terminal that reports no size (0) gets the usual 80 columns.
    this.out.write(`\r${progressLine(fraction, message, this.out.columns || undefined)}\x1b[K`);
    this.shown = true;
  }

  /** Removes the bar, so that what follows starts on a clean line. */
  clear(): void {
    if (this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }
}
