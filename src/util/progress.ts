import { humanBytes } from './bytes';

/** How often a long copy says how far it is. */
export const PROGRESS_EVERY_MS = 5_000;

export interface ProgressOptions {
  /** Bytes expected in all, when known; `estimated`: a guess (a dump is not the size of the data). */
  total?: number | null;
  estimated?: boolean;
  everyMs?: number;
  now?: () => number;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * The progress of one copy, said at a steady interval: bytes done, of how many, the rate and
 * the time left, e.g. `shop/pg-replica: copy 120.5 MiB of ~600.0 MiB (20%), 85.2 MiB/s, ETA 6 s`.
 * The rate is the average since the copy started (steadier than the last interval's).
 */
export class CopyProgress {
  private readonly started: number;
  private said: number;
  private done = 0;
  private readonly every: number;
  private readonly now: () => number;

  constructor(
    private readonly label: string,
    private readonly say: (line: string) => void,
    private options: ProgressOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.every = options.everyMs ?? PROGRESS_EVERY_MS;
    this.started = this.now();
    this.said = this.started;
  }

  /** A better total than the one given at the start (pg_basebackup's own estimate, Redis's RDB size). */
  setTotal(total: number | null, estimated = false): void {
    this.options = { ...this.options, total, estimated };
  }

  /** Bytes done so far; says a line when the interval has passed. */
  update(done: number): void {
    this.done = done;
    const t = this.now();
    if (t - this.said < this.every) return;
    this.said = t;
    this.say(this.line(t));
  }

  /** The last line: what was copied, in how long. */
  finish(): void {
    const seconds = (this.now() - this.started) / 1000;
    // A copy too quick to be seen under way (a small Redis sync) has no byte count: its time only.
    if (this.done === 0) this.say(`${this.label} finished in ${duration(seconds)}`);
    else this.say(`${this.label} finished: ${humanBytes(this.done)} in ${duration(seconds)}${seconds > 0 ? ` (${humanBytes(Math.round(this.done / seconds))}/s)` : ''}`);
  }

  line(t = this.now()): string {
    const seconds = (t - this.started) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    const { total, estimated } = this.options;
    const parts = [`${this.label} ${humanBytes(this.done)}`];
    // An estimate that the copy has outgrown says nothing any more (a dump is larger than the data).
    const known = total && total > 0 && !(estimated && this.done >= total) ? total : null;
    if (known) {
      // An estimate can be passed: the percentage stays below 100 until the copy ends.
      const pct = Math.min(estimated ? 99 : 100, Math.floor((this.done / known) * 100));
      parts[0] += ` of ${estimated ? '~' : ''}${humanBytes(known)} (${pct}%)`;
    }
    parts.push(`${humanBytes(Math.round(rate))}/s`);
    if (known && rate > 0 && known > this.done) parts.push(`ETA ${duration((known - this.done) / rate)}`);
    return parts.join(', ');
  }
}
