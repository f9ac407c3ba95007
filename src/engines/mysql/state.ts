import { createHash } from 'node:crypto';
import type { Action, ActionDetails, PairLive } from '../../plan/types';
import type { Pair, Server } from '../../topology';
import { bothSides, Inspection, LiveLink } from '../engine';
import { atLeast } from './dialect';
import type { MyFacts, ReplicaStatus } from './inspect';

export const DEFAULT_OPTIONS_FILE = '/etc/mysql/mariadb.conf.d/90-dbrepl.cnf';

/** A stable, non-zero server_id for a server that needs one (derived from its reference). */
export function serverIdFor(server: Server, avoid: number[]): number {
  let id = (createHash('sha256').update(server.ref).digest().readUInt32BE(0) % 4_000_000_000) + 1;
  while (avoid.includes(id)) id = (id % 4_000_000_000) + 1;
  return id;
}

export function preservedPath(datadir: string, stamp: string): string {
  return `${datadir.replace(/\/+$/, '')}.dbrepl-${stamp}.sql.gz`;
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

export function describe(pair: Pair, action: Action, master: Inspection<MyFacts>, slave: Inspection<MyFacts>, stamp: string): ActionDetails {
  const m = master.ok ? master.facts : null;
  const s = slave.ok ? slave.facts : null;
  const mariadb = (m ?? s)?.version.flavour !== 'mysql';
  const dump = mariadb ? 'mariadb-dump --single-transaction --gtid --master-data=1' : 'mysqldump --single-transaction --source-data=1 --set-gtid-purged=ON';
  const options = pair.slave.optionsFile ?? DEFAULT_OPTIONS_FILE;
  if (action === 'enable' || action === 'resync') {
    const warnings = m && s ? blockers(m, s).map((b) => `${b}; apply will refuse`) : [];
    const steps: string[] = [];
    let disruption = 'slave is rebuilt: its data is replaced by a copy of the master (reads of it see the copy fill in); master keeps serving, with a global lock for a moment when the dump starts';
    if (m && !m.logBin && mariadb) {
      steps.push(`master: binary logging is off: write log_bin, binlog_format=ROW and server_id into ${pair.master.optionsFile ?? DEFAULT_OPTIONS_FILE} and restart the master`);
      warnings.push(`the master ${pair.master.ref} must restart to turn on binary logging`);
      disruption = `master restarts (brief outage); ${disruption}`;
    }
    const preserved = s ? preservedPath(s.datadir, stamp) : null;
    steps.push(
      `preflight: same flavour, slave version >= master's, distinct non-zero server_id, the replication user can log in from the slave's host, the slave's admin login is kept`,
      `master: ensure user ${pair.replication.user}@${pair.slave.host} with REPLICATION SLAVE only`,
    );
    if (m && s && (s.serverId === 0 || s.serverId === m.serverId)) steps.push(`slave: set a server_id of its own (${mariadb ? `persisted in ${options}` : 'SET PERSIST'})`);
    steps.push(
      `slave: read_only on, then dump its current data to ${preserved ?? '(unknown)'} (kept)`,
      'slave: stop and reset replication, drop its databases (they are in that dump), reset its binary logs',
      `slave host: ${dump} --all-databases from the master piped straight into the slave (the slave's admin account is restored at the end)`,
      `slave: ${mariadb ? 'CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos; START SLAVE' : 'CHANGE REPLICATION SOURCE TO ... SOURCE_AUTO_POSITION=1; START REPLICA'}; read_only${mariadb ? ` (persisted in ${options})` : ' and super_read_only (SET PERSIST)'}`,
      'slave: wait until both replication threads run and it has executed what the master had',
      'on any failure after the drop: the slave is restored from its dump',
      'env: recompute the environment variables',
    );
    return { steps, disruption, preserved, warnings };
  }
  if (action === 'disable') {
    return {
      steps: [
        `master: note its executed GTIDs`,
        `slave: wait until it has executed them (at most ${pair.catchupTimeoutSeconds}s)`,
        `slave: stop replication and reset it completely`,
        `slave: writable again${mariadb ? ` (read_only=0 in ${options})` : ' (SET PERSIST read_only=OFF)'}`,
        'env: recompute the environment variables',
      ],
      disruption: 'slave becomes a standalone writable server; master keeps serving',
      preserved: null,
      warnings: [],
    };
  }
  return { steps: [], disruption: null, preserved: null, warnings: [] };
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
