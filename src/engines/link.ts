import { formatDuration } from '../config/schema';
import type { Pair } from '../model';
import type { PairLive } from './engine';

/**
 * A slave that follows its declared master but whose link is down: `reconnecting` while the
 * outage is short (a master restarting, the network), `broken` once it has lasted longer than
 * the pair's resync_after, or at once when the engine finds the two have diverged (a rebuild
 * is then the only way back). Shared by the engines' pure pairState.
 */

/** How long the link has been down, as well as the engine can tell, and on what basis. */
export interface Outage {
  /** Seconds; null when the engine cannot tell (the pair then stays reconnecting). */
  seconds: number | null;
  /**
   * `measured`: the server records when the link went down (Redis).
   * `at-most`: an upper bound (the time since the slave last heard from the master).
   * `at-least`: a lower bound (the last contact, less the longest quiet gap of a live link).
   * `nothing-missed`: the master can be read and has nothing the slave lacks: counted as 0 s.
   */
  basis: 'measured' | 'at-most' | 'at-least' | 'nothing-missed';
  /** What the number is, for the message (`since the slave last received WAL`). */
  note?: string;
}

export interface LinkExtras {
  masterKeepsSlave: boolean;
  lagBytes?: number | null;
}

function downFor(o: Outage): string {
  if (o.basis === 'nothing-missed') return `down (counted as 0s: ${o.note ?? 'the slave has everything the master has'})`;
  if (o.seconds === null) return `down for an unknown time${o.note ? ` (${o.note})` : ''}`;
  const qualifier = o.basis === 'at-most' ? 'at most ' : o.basis === 'at-least' ? 'at least ' : '';
  return `down for ${qualifier}${formatDuration(o.seconds)}${o.note ? ` (${o.note})` : ''}`;
}

/** The outage's seconds as the decision uses them: nothing missed counts as none. */
export function outageSeconds(o: Outage): number | null {
  return o.basis === 'nothing-missed' ? 0 : o.seconds;
}

/**
 * `reconnecting` until the outage has lasted longer than resync_after, then `broken`; the
 * error says why the link is down, for how long and when it will count as broken.
 */
export function linkDown(pair: Pair, outage: Outage, reason: string, extras: LinkExtras): PairLive {
  const seconds = outageSeconds(outage);
  const limit = formatDuration(pair.resyncAfterSeconds);
  const base = { lagSeconds: null, lagBytes: extras.lagBytes ?? null, masterKeepsSlave: extras.masterKeepsSlave };
  if (seconds !== null && seconds > pair.resyncAfterSeconds) {
    return { state: 'broken', ...base, error: `link to the master ${downFor(outage)}, longer than resync_after ${limit}: ${reason}` };
  }
  return { state: 'reconnecting', ...base, error: `link to the master ${downFor(outage)}: ${reason}; broken after resync_after ${limit}` };
}

/** Diverged: the slave cannot follow the master again, whatever the time; a rebuild is needed. */
export function diverged(reason: string, extras: LinkExtras): PairLive {
  return { state: 'broken', lagSeconds: null, lagBytes: extras.lagBytes ?? null, masterKeepsSlave: extras.masterKeepsSlave, error: reason };
}
