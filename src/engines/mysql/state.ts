import { createHash } from 'node:crypto';
import type { Pair, Server } from '../../model';
import { copyPath, CopyPattern } from '../../hosts/copies';
import { bothSides, Identity, Inspection, LiveLink, PairLive } from '../engine';
import { atLeast } from './dialect';
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
  if ('live' in sides) return sides.live;
  const r = sides.s.replica;
  if (!r) return { state: 'standalone', ...none, error: null };
  if (!follows(r, pair.master)) {
    return { state: 'other-master', ...none, error: `slave follows ${r.sourceHost}:${r.sourcePort}, not ${pair.master.ref} (${pair.master.host}:${pair.master.port})` };
  }
  if (r.ioRunning !== 'Yes' || r.sqlRunning !== 'Yes' || r.secondsBehind === null) {
    const why = r.lastSqlErrno
      ? `SQL thread stopped on error ${r.lastSqlErrno}: ${r.lastSqlError}`
      : r.lastIoErrno
        ? `IO thread error ${r.lastIoErrno}: ${r.lastIoError}`
        : `replication threads: IO ${r.ioRunning || 'No'}, SQL ${r.sqlRunning || 'No'}`;
    return { state: 'broken', ...none, error: why };
  }
  const lag = { lagSeconds: r.secondsBehind, lagBytes: lagBytes(sides.m, r), masterKeepsSlave: false };
  if (r.secondsBehind > pair.maxLagSeconds) {
    return { state: 'lagging', ...lag, error: `replication lag ${r.secondsBehind}s is over max_lag ${pair.maxLagSeconds}s` };
  }
  return { state: 'replicating', ...lag, error: null };
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
