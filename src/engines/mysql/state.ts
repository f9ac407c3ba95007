import { createHash } from 'node:crypto';
import type { Pair, Server } from '../../model';
import { copyPath, CopyPattern } from '../../hosts/copies';
import { bothSides, Identity, Inspection, LiveLink, PairLive } from '../engine';
import { diverged, linkDown, Outage } from '../link';
import { atLeast, gtidsCover } from './dialect';
import type { MyFacts, ReplicaStatus } from './inspect';

export const DEFAULT_OPTIONS_FILE = '/etc/mysql/mariadb.conf.d/90-dbrepl.cnf';

/** A stable, non-zero server_id for a server that needs one (derived from its reference). */
export function serverIdFor(server: Server, avoid: number[]): number {
  let id = (createHash('sha256').update(server.ref).digest().readUInt32BE(0) % 4_000_000_000) + 1;
  while (avoid.includes(id)) id = (id % 4_000_000_000) + 1;
  return id;
}

/** A compressed dump of every database, next to the data directory. */
export function copies(facts: Pick<MyFacts, 'datadir'>): CopyPattern {
  return { base: facts.datadir.replace(/\/+$/, ''), suffix: '.sql.gz', kind: 'file' };
}

export function preservedPath(datadir: string, stamp: string): string {
  return copyPath(copies({ datadir }), stamp);
}

function follows(r: ReplicaStatus, master: Server): boolean {
  return r.sourceHost.toLowerCase() === master.host.toLowerCase() && r.sourcePort === master.port;
}

/** Bytes the slave has still to execute, when both sides name the same binary log. */
function lagBytes(m: MyFacts, r: ReplicaStatus): number | null {
  if (!m.binlogFile || m.binlogPos === null || r.execSourceLogFile !== m.binlogFile) return null;
  return Math.max(0, m.binlogPos - r.execSourceLogPos);
}

export function pairState(pair: Pair, master: Inspection<MyFacts>, slave: Inspection<MyFacts>): PairLive {
  const none = { lagSeconds: null, lagBytes: null, masterKeepsSlave: false };
  const sides = bothSides(master, slave);
  if ('live' in sides) {
    // The master cannot be inspected (stopped, restarting, out of reach): a slave that follows
    // it and is reconnecting, or has diverged, is judged from its own side.
    if (!master.ok && slave.ok && slave.facts.replica && follows(slave.facts.replica, pair.master)) {
      return notReplicating(pair, slave.facts.replica, slave.facts, null, `${pair.master.ref} unreachable: ${master.error}`) ?? sides.live;
    }
    return sides.live;
  }
  const r = sides.s.replica;
  if (!r) return { state: 'standalone', ...none, error: null };
  if (!follows(r, pair.master)) {
    return { state: 'other-master', ...none, error: `slave follows ${r.sourceHost}:${r.sourcePort}, not ${pair.master.ref} (${pair.master.host}:${pair.master.port})` };
  }
  const down = notReplicating(pair, r, sides.s, sides.m, null);
  if (down) return down;
  if (r.secondsBehind === null) {
    return { state: 'broken', ...none, error: `replication threads: IO ${r.ioRunning || 'No'}, SQL ${r.sqlRunning || 'No'}, but no Seconds_Behind_Master` };
  }
  const lag = { lagSeconds: r.secondsBehind, lagBytes: lagBytes(sides.m, r), masterKeepsSlave: false };
  if (r.secondsBehind > pair.maxLagSeconds) {
    return { state: 'lagging', ...lag, error: `replication lag ${r.secondsBehind}s is over max_lag ${pair.maxLagSeconds}s` };
  }
  return { state: 'replicating', ...lag, error: null };
}

/**
 * IO thread errors that mean the master could not be reached or the connection dropped
 * (the IO thread keeps retrying every MASTER_CONNECT_RETRY): client errors 2002 (socket),
 * 2003 (cannot connect: refused, unreachable), 2004 (cannot create a socket), 2005 (unknown
 * host), 2006 (server gone), 2012 (handshake), 2013 and 2055 (connection lost), MariaDB's
 * connector 5013/5014 (network read/write); server errors 1040 (too many connections), 1053
 * (server shutting down), 1158-1161 (network read/write errors and timeouts), 1927 (MariaDB:
 * connection killed). Anything else from the IO thread (1045 a refused login, 1236/13114 the
 * master cannot serve the slave's position) is not a blip.
 */
export const CONNECTION_ERRORS: ReadonlySet<number> = new Set([2002, 2003, 2004, 2005, 2006, 2012, 2013, 2055, 5013, 5014, 1040, 1053, 1158, 1159, 1160, 1161, 1927]);

/** 1236 (MySQL 8 reports it as 13114): the master cannot send what the slave asks for. */
function binlogRefused(r: ReplicaStatus): boolean {
  return r.lastIoErrno === 1236 || r.lastIoErrno === 13114 || /fatal error 1236/i.test(r.lastIoError);
}

/**
 * The slave follows the declared master but does not replicate: why, and whether that is a
 * blip (`reconnecting` until resync_after) or a break (`broken` at once). Null when both
 * threads run and the IO thread is connected.
 */
function notReplicating(pair: Pair, r: ReplicaStatus, s: MyFacts, m: MyFacts | null, masterError: string | null): PairLive | null {
  const extras = { masterKeepsSlave: false };
  if (r.sqlRunning !== 'Yes') {
    // The SQL thread stops on an error (1062 duplicate key, 1032 row not found, ...): the data
    // differ; or it was stopped by hand. Neither comes back by reconnecting.
    if (r.lastSqlErrno) return diverged(`SQL thread stopped on error ${r.lastSqlErrno}: ${r.lastSqlError}`, extras);
    return diverged(`the SQL thread is stopped (no error; STOP SLAVE?) and the IO thread is ${r.ioRunning || 'No'}${r.lastIoErrno ? ` (error ${r.lastIoErrno}: ${r.lastIoError})` : ''}`, extras);
  }
  if (r.ioRunning === 'Yes') return null;
  if (binlogRefused(r)) {
    return diverged(`IO thread stopped on error ${r.lastIoErrno}: the master cannot serve the slave's position (binary logs purged, or the slave has transactions the master lacks): ${r.lastIoError}`, extras);
  }
  if (r.lastIoErrno && !CONNECTION_ERRORS.has(r.lastIoErrno)) {
    return diverged(`IO thread error ${r.lastIoErrno}: ${r.lastIoError}`, extras);
  }
  if (r.ioRunning !== 'Connecting') {
    // Stopped: by hand, or it gave up after master_retry_count attempts. It does not reconnect by itself.
    return diverged(`the IO thread is stopped and does not reconnect by itself${r.lastIoErrno ? ` (last error ${r.lastIoErrno}: ${r.lastIoError})` : ' (STOP SLAVE?)'}`, extras);
  }
  const why = r.lastIoErrno ? `IO thread reconnecting after error ${r.lastIoErrno}: ${r.lastIoError}` : 'IO thread connecting to the master';
  return linkDown(pair, outageOf(s, m), masterError ? `${why}; ${masterError}` : why, extras);
}

/**
 * How long the IO thread has been cut off from the master.
 * - The master can be read and the slave has received every GTID it has: nothing missed,
 *   counted as 0 s (a quiet master loses nothing to the outage).
 * - MySQL 8: performance_schema records when the slave last heard from the master (a heartbeat,
 *   sent every HEARTBEAT_INTERVAL while the master is quiet, or a queued transaction). The link
 *   was up then and, had it stayed up, would have carried something within one heartbeat
 *   period, so `now - last contact - period` is a lower bound: a short outage never reads long.
 *   (LAST_ERROR_TIMESTAMP is no use: each failed retry overwrites it.)
 * - MariaDB 10.11 records no time of the last contact (Slave_last_heartbeat is gone;
 *   information_schema.SLAVE_STATUS with its connection timestamps arrived in 11.6; the
 *   processlist TIME of the IO thread counts from the thread's start and is not reset by a
 *   reconnect; Seconds_Behind_Master is NULL while disconnected; Last_IO_Error carries no
 *   retry count). The age of the last event the SQL thread applied (its processlist TIME,
 *   "seconds since the timestamp of the last replicated event") is an upper bound of the
 *   outage; it overstates on a master that was quiet before. A pair whose master cannot be
 *   read is never rebuilt (there is nothing to copy from), so there it only labels.
 */
export function outageOf(s: MyFacts, m: MyFacts | null): Outage {
  const r = s.replica;
  if (m && r) {
    const received = s.version.flavour === 'mariadb' ? r.gtidPosition : [r.retrievedGtids, s.executedGtids].filter(Boolean).join(',');
    if (received && gtidsCover(s.version.flavour, received, m.executedGtids) === true) {
      return { seconds: 0, basis: 'nothing-missed', note: 'the slave has received every GTID the master has' };
    }
  }
  const t = s.linkTiming;
  if (t?.contactAgeSeconds != null && t.heartbeatPeriodSeconds != null && t.heartbeatPeriodSeconds > 0) {
    return {
      seconds: Math.max(0, Math.round(t.contactAgeSeconds - t.heartbeatPeriodSeconds)),
      basis: 'at-least',
      note: `last heard from the master ${Math.round(t.contactAgeSeconds)}s ago; it sends a heartbeat every ${t.heartbeatPeriodSeconds}s when quiet`,
    };
  }
  if (t?.sqlThreadEventAgeSeconds != null) {
    return { seconds: t.sqlThreadEventAgeSeconds, basis: 'at-most', note: "since the master's last event the slave applied" };
  }
  return { seconds: null, basis: 'at-most', note: 'the server records no time of its last contact with the master' };
}

/** Problems that stop an enable before anything changes (pure; apply checks them again live). */
export function blockers(m: MyFacts, s: MyFacts): string[] {
  const out: string[] = [];
  if (m.version.flavour !== s.version.flavour) out.push(`flavours differ (master ${m.version.text}, slave ${s.version.text}); replicate MariaDB to MariaDB and MySQL to MySQL`);
  else if (!atLeast(s.version, m.version.major, m.version.minor)) out.push(`the slave (${s.version.text}) is older than the master (${m.version.text}); a slave must run the same or a newer version`);
  if (m.version.flavour === 'mysql' && (m.gtidMode !== 'ON' || s.gtidMode !== 'ON')) {
    out.push(`GTID replication needs gtid_mode=ON and enforce_gtid_consistency=ON on both servers (master ${m.gtidMode}, slave ${s.gtidMode}); set them (a restart) first`);
  }
  if (!m.logBin && m.version.flavour === 'mysql') out.push('the master has binary logging off; enable log_bin (a restart) first');
  return out;
}

/**
 * One server whatever name reached it: MySQL's server_uuid; MariaDB has none, so its host
 * name, data directory and port (two servers share all three only on one machine, where
 * they cannot share the data directory).
 */
export function identity(f: MyFacts): Identity {
  if (f.serverUuid) return { key: `uuid:${f.serverUuid}`, text: `server_uuid ${f.serverUuid}` };
  return { key: `${f.hostname}|${f.datadir}|${f.port}`, text: `@@hostname ${f.hostname}, @@datadir ${f.datadir}, @@port ${f.port}` };
}

export function liveLinks(inspections: Array<Inspection<MyFacts>>, servers: Server[]): LiveLink[] {
  const links: LiveLink[] = [];
  for (const insp of inspections) {
    if (!insp.ok || !insp.facts.replica) continue;
    const r = insp.facts.replica;
    const master = servers.find((sv) => sv.ref !== insp.server.ref && sv.engine === 'mysql' && follows(r, sv)) ?? null;
    links.push({ slave: insp.server, master, upstream: `${r.sourceHost}:${r.sourcePort}` });
  }
  return links;
}
