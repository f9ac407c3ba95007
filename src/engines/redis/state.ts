import type { Pair, Server } from '../../model';
import { humanBytes } from '../../util/bytes';
import { formatDuration } from '../../config/schema';
import { copySecondsEstimate, during } from '../retention';
import { copyPath, CopyPattern } from '../../hosts/copies';
import { bothSides, Identity, Inspection, LiveLink, PairLive } from '../engine';
import { linkDown, Outage } from '../link';
import type { RedisFacts } from './inspect';

/** A full sync that the master cut and that started over this many times is given up (the slave detached). */
export const MAX_SYNC_RESTARTS = 3;

/**
 * Where a server's own files go: next to its RDB and named after it, so that servers
 * sharing a directory (Debian's /var/lib/redis) never share a lock or a kept copy.
 */
export function ownBase(dir: string, dbfilename: string): string {
  return `${dir.replace(/\/+$/, '')}/${dbfilename.replace(/\.rdb$/, '')}`;
}

/** A copy of its RDB file, next to it. */
export function copies(facts: Pick<RedisFacts, 'dir' | 'dbfilename'>): CopyPattern {
  return { base: ownBase(facts.dir, facts.dbfilename), suffix: '.rdb', kind: 'file' };
}

export function preservedPath(dir: string, dbfilename: string, stamp: string): string {
  return copyPath(copies({ dir, dbfilename }), stamp);
}

function follows(s: RedisFacts, slave: Server, master: Server, m: RedisFacts | null): boolean {
  if (s.masterHost && s.masterHost.toLowerCase() === master.host.toLowerCase() && s.masterPort === master.port) return true;
  // Under another name: the master lists this replica (its address and listening port).
  return !!m && m.replicas.some((r) => r.ip === slave.host && r.port === slave.port) && s.masterPort === master.port;
}

export function pairState(pair: Pair, master: Inspection<RedisFacts>, slave: Inspection<RedisFacts>): PairLive {
  const none = { lagSeconds: null, lagBytes: null, masterKeepsSlave: false };
  const sides = bothSides(master, slave);
  if ('live' in sides) {
    // The master cannot be inspected (stopped, restarting, out of reach): a replica of it whose
    // link is down and that is not in a sync is reconnecting (broken after resync_after).
    if (!master.ok && slave.ok && slave.facts.role === 'slave' && !slave.facts.linkUp && !slave.facts.syncInProgress && follows(slave.facts, pair.slave, pair.master, null)) {
      return linkDown(pair, outageOf(slave.facts), `the replica is reconnecting (Redis retries every second); ${pair.master.ref} unreachable: ${master.error}`, none);
    }
    return sides.live;
  }
  const { m, s } = sides;
  if (s.role === 'master') return { state: 'standalone', ...none, error: null };
  if (!follows(s, pair.slave, pair.master, m)) {
    return { state: 'other-master', ...none, error: `slave follows ${s.masterHost}:${s.masterPort}, not ${pair.master.ref} (${pair.master.host}:${pair.master.port})` };
  }
  if (!s.linkUp) {
    const down = Math.max(0, s.linkDownSeconds ?? 0);
    if (s.syncInProgress && down <= pair.maxLagSeconds) {
      return { state: 'lagging', ...none, error: `initial sync from the master in progress (${down}s)` };
    }
    if (s.syncInProgress) return { state: 'broken', ...none, error: `full sync not finishing (link down for ${down}s; restarted syncs?)` };
    // Redis gives no reason for a link that is down (a refused login looks the same as a master
    // restarting), only how long: reconnecting until resync_after, then broken.
    return linkDown(pair, outageOf(s), 'the replica is reconnecting (Redis retries every second and gives no reason: a master it cannot reach and a refused masterauth look the same)', none);
  }
  const lagBytes = Math.max(0, m.masterOffset - (s.replicaOffset ?? 0));
  const entry = m.replicas.find((r) => r.port === pair.slave.port && (r.ip === pair.slave.host || m.replicas.filter((x) => x.port === r.port).length === 1));
  const lagSeconds = lagBytes === 0 ? 0 : (entry?.lag ?? s.lastIoSecondsAgo ?? null);
  const lag = { lagSeconds, lagBytes, masterKeepsSlave: false };
  if (lagSeconds !== null && lagSeconds > pair.maxLagSeconds) {
    return { state: 'lagging', ...lag, error: `replica ${lagBytes} bytes and ${lagSeconds}s behind (over max_lag ${pair.maxLagSeconds}s)` };
  }
  return { state: 'replicating', ...lag, error: null };
}

/**
 * master_link_down_since_seconds: Redis records when the link went down. It is -1 when the
 * link has not been up since the replica started: then it has been down at least as long as
 * the replica has run (uptime_in_seconds).
 */
export function outageOf(s: RedisFacts): Outage {
  if (s.linkDownSeconds !== null && s.linkDownSeconds >= 0) return { seconds: s.linkDownSeconds, basis: 'measured' };
  if (s.uptimeSeconds !== null) return { seconds: s.uptimeSeconds, basis: 'at-least', note: 'not linked since the replica started' };
  return { seconds: null, basis: 'measured', note: 'not linked since the replica started' };
}

/** Warnings when the master's buffers are small for its dataset: a full sync could loop. */
export function bufferWarnings(master: Server, m: RedisFacts): string[] {
  const out: string[] = [];
  const size = m.usedMemory;
  const { hard, soft, seconds } = m.replicaBufferLimit;
  // A hard limit below the dataset is a refusal (bufferRefusal), not a warning.
  if (!(hard > 0 && hard < size) && soft > 0 && soft < size && seconds > 0) {
    out.push(`${master.ref}: client-output-buffer-limit replica soft limit ${humanBytes(soft)} for ${seconds}s is below the dataset (${humanBytes(size)}): a long full sync under writes can be cut and start over; raise it first`);
  }
  const backlogFloor = Math.max(1024 * 1024, Math.floor(size / 100));
  if (m.replBacklogSize < backlogFloor) {
    out.push(`${master.ref}: repl-backlog-size ${humanBytes(m.replBacklogSize)} is small for a ${humanBytes(size)} dataset: after a short disconnect the replica will need a full sync`);
  }
  return out;
}

/**
 * Why a full sync from this master would most likely start over and over (each time a fork
 * of the master), so that enable and resync are refused unless --force: its replica output
 * buffer's hard limit is below the dataset, or below the writes the sync would have to hold
 * (`bytesPerSecond` measured by preflight). Null when it should hold.
 */
export function bufferRefusal(pair: Pair, m: RedisFacts, bytesPerSecond: number | null): string | null {
  const size = m.usedMemory;
  const { hard } = m.replicaBufferLimit;
  const raise = `raise it on ${pair.master.ref} (CONFIG SET client-output-buffer-limit "replica <hard> <soft> <seconds>", and in its config file); a forced sync that keeps starting over is stopped after ${MAX_SYNC_RESTARTS} attempts and the slave detached`;
  if (hard > 0 && hard < size) {
    return `${pair.master.ref}: client-output-buffer-limit replica hard limit ${humanBytes(hard)} is below the dataset (${humanBytes(size)}): writes during a full sync can overflow it, the master drops the replica and the sync starts over (a loop of forks of the master); ${raise}`;
  }
  if (hard > 0 && bytesPerSecond && bytesPerSecond > 0) {
    const seconds = copySecondsEstimate(size);
    if (bytesPerSecond * seconds > hard) {
      return `${pair.master.ref}: the writes buffered for ${pair.slave.ref} during the estimated full sync (${during(bytesPerSecond, seconds)}) exceed client-output-buffer-limit replica hard limit ${humanBytes(hard)}: the master would drop the replica and the sync start over; ${raise}`;
    }
  }
  return null;
}

/**
 * What the master's replication stream (`bytesPerSecond`, its write rate) needs to be held
 * (pure; the rate is measured by preflight):
 * - during the full sync, the master buffers every write for the replica in its output buffer
 *   until the RDB is loaded: past the hard limit (or the soft limit for its seconds) the
 *   replica is dropped and the sync starts over;
 * - a link down for up to resync_after resumes with a partial sync only if repl-backlog-size
 *   holds that long's writes; otherwise the replica takes a full sync by itself.
 * The sync's duration is estimated from the dataset at the copy rate of retention.ts.
 */
export function syncWarnings(pair: Pair, m: RedisFacts, bytesPerSecond: number | null): string[] {
  if (!bytesPerSecond || bytesPerSecond <= 0) return [];
  const seconds = copySecondsEstimate(m.usedMemory);
  const buffered = bytesPerSecond * seconds;
  const { hard, soft, seconds: softSeconds } = m.replicaBufferLimit;
  const out: string[] = [];
  // Over the hard limit is a refusal (bufferRefusal), not a warning.
  const overHard = hard > 0 && buffered > hard;
  if (!overHard && soft > 0 && softSeconds > 0 && buffered > soft && seconds > softSeconds) {
    out.push(`${pair.master.ref}: the writes buffered for ${pair.slave.ref} during the estimated full sync (${during(bytesPerSecond, seconds)}) stay over client-output-buffer-limit replica soft limit ${humanBytes(soft)} for more than ${softSeconds}s: the master would drop the replica and the sync start over; raise it first`);
  }
  const outage = bytesPerSecond * pair.resyncAfterSeconds;
  if (m.replBacklogSize > 0 && outage > m.replBacklogSize) {
    out.push(`${pair.master.ref}: repl-backlog-size ${humanBytes(m.replBacklogSize)} holds ~${formatDuration(m.replBacklogSize / bytesPerSecond)} of writes at ${humanBytes(Math.round(bytesPerSecond))}/s, less than resync_after ${formatDuration(pair.resyncAfterSeconds)}: a link down for longer resumes only with a full sync; raise it to ~${humanBytes(Math.ceil(outage))}`);
  }
  return out;
}

/** run_id is random per server start: equal ids are one server, whatever name reached it. */
export function identity(f: RedisFacts): Identity {
  return { key: f.runId, text: `run_id ${f.runId}` };
}

export function liveLinks(inspections: Array<Inspection<RedisFacts>>, servers: Server[]): LiveLink[] {
  const byRef = new Map(inspections.filter((i) => i.ok).map((i) => [i.server.ref, i as Extract<Inspection<RedisFacts>, { ok: true }>]));
  const links: LiveLink[] = [];
  for (const insp of byRef.values()) {
    if (insp.facts.role !== 'slave') continue;
    const master = servers.find((sv) => sv.ref !== insp.server.ref && sv.engine === 'redis' && follows(insp.facts, insp.server, sv, byRef.get(sv.ref)?.facts ?? null)) ?? null;
    links.push({ slave: insp.server, master, upstream: `${insp.facts.masterHost}:${insp.facts.masterPort}` });
  }
  return links;
}
