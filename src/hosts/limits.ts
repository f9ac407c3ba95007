/** Every host command has a bound; these are the defaults, in one place. */

/** A small command (stat, cat, mkdir, a client's SELECT 1). */
export const COMMAND_TIMEOUT_MS = 120_000;
/** A user's service command line (stop/start): a hung init script must not hang the run. */
export const SERVICE_TIMEOUT_MS = 300_000;
/** Assumed worst-case copy rate when a bound is derived from the data size. */
const COPY_BYTES_PER_SECOND = 4 * 1024 * 1024;
const COPY_MINIMUM_MS = 600_000;

/**
 * Bound on a copy of `bytes` (a base backup, a dump, an RDB): generous (ten minutes, plus
 * the time at 4 MiB/s), or what the pair's `copy_timeout` says.
 */
export function copyTimeoutMs(bytes: number, overrideSeconds?: number): number {
  if (overrideSeconds !== undefined) return Math.max(1, overrideSeconds) * 1000;
  return COPY_MINIMUM_MS + Math.ceil((Math.max(0, bytes) / COPY_BYTES_PER_SECOND) * 1000);
}
