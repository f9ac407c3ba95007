import { formatDuration } from '../config/schema';
import { humanBytes } from '../util/bytes';

/**
 * What the master must keep while a slave is copied: the WAL, binary logs or replication
 * stream written during the copy has to survive until the new slave reads it. The plan warns
 * when a setting or the master's disk cannot hold that much.
 *
 * The copy's duration is estimated at 50 MiB/s of data. (hosts/limits.ts bounds a copy at
 * 4 MiB/s, but that is a generous timeout, not an estimate: at that rate every warning here
 * would fire for any sizeable database.)
 */
export const COPY_ESTIMATE_BYTES_PER_SECOND = 50 * 1024 * 1024;

export function copySecondsEstimate(bytes: number): number {
  return Math.max(1, Math.ceil(Math.max(0, bytes) / COPY_ESTIMATE_BYTES_PER_SECOND));
}

/** A write rate: two readings of a position that only grows, `ms` apart (null when either could not be read or it went back). */
export async function sampleRate(read: () => Promise<number | null>, ms = 1000, first?: { value: number; at: number }): Promise<number | null> {
  // A reading taken earlier (at inspection) starts the interval: only what is left of it is waited for.
  const t0 = first?.at ?? Date.now();
  const a = first?.value ?? (await read());
  if (a === null) return null;
  const left = t0 + ms - Date.now();
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
  const b = await read();
  const seconds = (Date.now() - t0) / 1000;
  if (b === null || b < a || seconds <= 0) return null;
  return (b - a) / seconds;
}

/** The larger of the rates known (a one-second sample misses bursts; a long average misses a busy hour). */
export function highestRate(...rates: Array<number | null | undefined>): number | null {
  const known = rates.filter((r): r is number => r !== null && r !== undefined && Number.isFinite(r) && r >= 0);
  return known.length === 0 ? null : Math.max(...known);
}

/** `~1.2 GiB (20.0 MiB/s for ~1m)`: what a rate writes during the copy. */
export function during(bytesPerSecond: number, seconds: number): string {
  return `~${humanBytes(Math.round(bytesPerSecond * seconds))} (${humanBytes(Math.round(bytesPerSecond))}/s for ~${formatDuration(seconds)})`;
}
