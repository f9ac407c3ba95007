import { messageOf } from '../../errors';
import type { Host } from '../../hosts/host';
import { checkFreeSpace, freeBytes } from '../../hosts/rebuild';
import { formatDuration } from '../../config/schema';
import { humanBytes } from '../../util/bytes';
import { copySecondsEstimate, during, highestRate } from '../retention';
import type { Pair } from '../../model';
import { checkHostCanWork, finding, Finding, hostOrError, Session, sharedMachine, Sides } from '../engine';
import type { ActionPlan, ChangeAction } from '../engine';
import { dataBytes, Sql, withClient } from './client';
import { Dialect, dialectFor } from './dialect';
import { checkPrograms, verifyHost } from './host-side';
import { col, MyFacts } from './inspect';
import { checkOptionsFile, optionsAsServerReads, optionsFile } from './options';
import { blockers } from './state';
import { replicationTls } from '../tls';
import { adminAccount, service } from './steps';
import { copyChoice } from './physical';

/**
 * Every check that changes nothing, with the servers and hosts it needs: run by plan, and
 * again by apply after its lock, before the first change. For a pair with nothing to do,
 * a MariaDB slave's settings are checked to survive a restart.
 */
export async function preflight(pair: Pair, { m, s }: Sides<MyFacts>, planned: { action: ChangeAction; plan: ActionPlan } | null, session: Session): Promise<Finding[]> {
  const d = dialectFor(s.version);
  const md = dialectFor(m.version);
  const mariadb = d.version.flavour === 'mariadb';
  if (!planned) return pair.desired === 'enabled' && mariadb && s.replica ? survivesRestart(pair, s, session) : [];

  const out: Finding[] = [];
  const error = (message: string): void => void out.push({ level: 'error', message });
  const slaveHost = await hostOrError(session, pair.slave, error);

  if (planned.action === 'disable') {
    if (d.needsOptionsFile && slaveHost) {
      out.push(...(await finding('error', () => verifyHost(slaveHost, pair.slave, s))));
      out.push(...(await finding('error', () => checkOptionsFile(slaveHost, pair.slave, s))));
    }
    return out;
  }

  for (const b of blockers(m, s)) error(b);
  if (replicationTls(pair.master) === 'verify-full' && !pair.master.tls?.ca) {
    error(`replication from ${pair.master.ref} with tls verify-full needs tls.ca: the slave's server and the copy programs verify the master's certificate against a CA file`);
  }
  if (s.dumpClients.length > 0) {
    error(`${pair.slave.ref} is serving ${s.dumpClients.length} replica connection(s) of its own (${s.dumpClients.join(', ')}); refusing to overwrite a master — fix the file or stop those replicas first`);
  }
  // The checks are independent: they run at once (the binary log rate is sampled meanwhile).
  const retention = binlogRetention(session, pair, m, md);
  const checks: Array<Promise<Finding[]>> = [];
  if (md.version.flavour === 'mysql') {
    // mysqldump --source-data takes FLUSH TABLES WITH READ LOCK: behind a long query it would
    // hold off every write on the master until that query ends.
    checks.push(finding('error', () => noLongQueries(session, pair)));
  }
  // Put back after the copy: it must be readable now, not after the slave was emptied.
  checks.push(finding('error', () => withClient(session, pair.slave, (sql) => adminAccount(sql, d))));
  if (slaveHost) {
    // The kept dump, the copy and the option file belong on the slave's own machine.
    checks.push(finding('error', () => verifyHost(slaveHost, pair.slave, s)));
    checks.push(finding('error', () => checkPrograms(slaveHost, [d.dumpProgram, d.clientProgram, md.dumpProgram, 'gzip', 'dd'])));
    if (d.needsOptionsFile) checks.push(finding('error', () => checkOptionsFile(slaveHost, pair.slave, s)));
    checks.push(finding('error', async () => checkFreeSpace(slaveHost, s.datadir, await dataBytes(session, pair.master), pair.master.ref)));
  }
  const choice = copyChoice(pair, m, s);
  if (choice.method === 'logical' && pair.copy === 'physical') error(`${pair.name} says copy: physical, but ${choice.why}`);
  if (choice.method === 'physical' && slaveHost) {
    checks.push(finding('error', () => checkPrograms(slaveHost, ['mariabackup', 'mbstream', 'setpriv'])));
    const masterHost = await hostOrError(session, pair.master, error);
    if (masterHost) checks.push(finding('error', () => checkHostCanWork(masterHost, pair.master)));
  }
  for (const f of await Promise.all(checks)) out.push(...f);
  if (mariadb && !m.logBin) {
    const masterHost = await hostOrError(session, pair.master, error);
    if (masterHost) {
      out.push(...(await finding('error', () => checkHostCanWork(masterHost, pair.master))));
      out.push(...(await finding('error', () => verifyHost(masterHost, pair.master, m))));
      out.push(...(await finding('error', () => checkOptionsFile(masterHost, pair.master, m))));
      if (!pair.master.service && slaveHost && (await sharedMachine(slaveHost, masterHost))) {
        error(`${pair.master.ref} must restart and has no service commands; the default (${service(pair.master, md).stop}) would stop every server of that host, ${pair.slave.ref} included: set service.stop and service.start for ${pair.master.ref}`);
      }
    }
  }
  out.push(...(await retention));
  return out;
}

/**
 * The slave starts replicating from the GTID position of the dump, so the master's binary
 * logs from the start of the copy must still be there when it ends: not expired
 * (binlog_expire_logs_seconds / expire_logs_days), and with room on the master's disk for
 * what is written meanwhile. Warnings only: durations and rates are estimates.
 */
async function binlogRetention(session: Session, pair: Pair, m: MyFacts, md: Dialect): Promise<Finding[]> {
  // Apply's second run of the checks: the plan showed these warnings already.
  if (!m.logBin || session.recheck) return [];
  try {
    const copySeconds = copySecondsEstimate(await dataBytes(session, pair.master));
    const { vars, rate } = await withClient(session, pair.master, async (sql) => {
      const rows = await sql.query(
        `SHOW GLOBAL VARIABLES WHERE Variable_name IN ('binlog_expire_logs_seconds', 'expire_logs_days', 'binlog_expire_logs_auto_purge', 'log_bin_basename')`,
      );
      return { vars: Object.fromEntries(rows.map((r) => [String(col(r, 'Variable_name')), String(col(r, 'Value'))])), rate: await binlogRate(sql, md) };
    });
    let free: number | null = null;
    const dir = vars.log_bin_basename ? vars.log_bin_basename.replace(/\/[^/]*$/, '') || '/' : null;
    if (dir && rate) {
      try {
        // Only on the machine that runs the master (the same proof apply asks for).
        const host = await session.hosts.forServer(pair.master);
        await verifyHost(host, pair.master, m);
        free = await freeBytes(host, dir);
      } catch {
        free = null;
      }
    }
    return binlogRetentionWarnings(pair, { expireSeconds: binlogExpirySeconds(vars), copySeconds, binlogBytesPerSecond: rate, freeBytes: free, dir }).map((message) => ({ level: 'warning' as const, message }));
  } catch (err) {
    return [{ level: 'warning', message: `cannot estimate whether ${pair.master.ref} keeps its binary logs through the copy: ${messageOf(err)}` }];
  }
}

/**
 * When binary logs expire, in seconds; null: never. MySQL 8.0.29+ binlog_expire_logs_auto_purge
 * OFF turns expiry off; binlog_expire_logs_seconds wins over expire_logs_days (MariaDB keeps
 * the two in step; MySQL 8.4 has only the first).
 */
export function binlogExpirySeconds(vars: Record<string, string | undefined>): number | null {
  if ((vars.binlog_expire_logs_auto_purge ?? '').toUpperCase() === 'OFF') return null;
  const seconds = Number(vars.binlog_expire_logs_seconds ?? 0);
  const days = Number(vars.expire_logs_days ?? 0);
  if (seconds > 0) return seconds;
  if (days > 0) return Math.round(days * 86400);
  return null;
}

/**
 * The master's binary log rate, bytes/s: two readings of its binlog position a second apart
 * (when it did not rotate between them), and MariaDB's average since start
 * (Binlog_bytes_written / Uptime).
 */
async function binlogRate(sql: Sql, md: Dialect): Promise<number | null> {
  const read = async (): Promise<{ file: string; pos: number } | null> => {
    const [r] = await sql.query(md.binlogStatus);
    return r ? { file: String(col(r, 'File')), pos: Number(col(r, 'Position')) } : null;
  };
  const t0 = Date.now();
  const a = await read();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const b = await read();
  const seconds = (Date.now() - t0) / 1000;
  const sampled = a && b && a.file === b.file && b.pos >= a.pos ? (b.pos - a.pos) / seconds : null;
  let average: number | null = null;
  if (md.version.flavour === 'mariadb') {
    const rows = await sql.query(`SHOW GLOBAL STATUS WHERE Variable_name IN ('Binlog_bytes_written', 'Uptime')`).catch(() => []);
    const status = Object.fromEntries(rows.map((r) => [String(col(r, 'Variable_name')), Number(col(r, 'Value'))]));
    if (status.Binlog_bytes_written !== undefined && (status.Uptime ?? 0) > 60) average = status.Binlog_bytes_written / status.Uptime!;
  }
  return highestRate(sampled, average);
}

/** Pure: the warnings for the estimated copy. */
export function binlogRetentionWarnings(
  pair: Pair,
  o: { expireSeconds: number | null; copySeconds: number; binlogBytesPerSecond: number | null; freeBytes: number | null; dir: string | null },
): string[] {
  const out: string[] = [];
  if (o.expireSeconds !== null && o.expireSeconds < o.copySeconds) {
    out.push(`${pair.master.ref} expires its binary logs after ${formatDuration(o.expireSeconds)} (binlog_expire_logs_seconds / expire_logs_days), less than the estimated copy (~${formatDuration(o.copySeconds)}): the logs from the dump's position can be purged before ${pair.slave.ref} starts replicating, which would then stop on error 1236; raise it first`);
  }
  const written = (o.binlogBytesPerSecond ?? 0) * o.copySeconds;
  if (o.freeBytes !== null && written > o.freeBytes) {
    out.push(`${pair.master.ref} has ${humanBytes(o.freeBytes)} free in ${o.dir ?? 'its binary log directory'}, less than the binary logs it writes during the estimated copy (${during(o.binlogBytesPerSecond!, o.copySeconds)}): free space there first`);
  }
  return out;
}

async function noLongQueries(session: Session, pair: Pair): Promise<void> {
  const [long] = await withClient(session, pair.master, (sql) =>
    sql.query(`SELECT COUNT(*) AS n, COALESCE(MAX(TIME), 0) AS t FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND TIME > 30 AND ID <> CONNECTION_ID()`),
  );
  if (Number(long!.n) > 0) {
    throw new Error(`${pair.master.ref} is running ${long!.n} query(ies) for over 30 s (the longest ${long!.t} s); the dump's global read lock would wait behind them and stall all writes: apply again when they are done`);
  }
}

/**
 * A replicating MariaDB slave whose read_only or server_id lives only in memory comes back
 * writable (or with the master's server_id) after its next restart: say so.
 */
async function survivesRestart(pair: Pair, s: MyFacts, session: Session): Promise<Finding[]> {
  let host: Host;
  try {
    host = await session.hosts.forServer(pair.slave);
    await verifyHost(host, pair.slave, s);
  } catch {
    // Host commands cannot reach it from here: nothing to check, nothing to change.
    return [];
  }
  try {
    const read = await optionsAsServerReads(host, pair.slave, s);
    const lost: string[] = [];
    if (s.readOnly && read.values.get('read_only') !== '1') lost.push('read_only would be off');
    if (read.values.get('server_id') !== String(s.serverId)) lost.push(`server_id would be ${read.values.get('server_id') ?? 'unset (1)'}, not ${s.serverId}`);
    if (lost.length === 0) return [];
    return [{ level: 'warning', message: `after a restart ${pair.slave.ref} ${lost.join(' and ')}: its option files, read as the server's user (uid ${read.uid}), do not carry the settings in force; check that ${optionsFile(pair.slave)} is readable by that user and in a directory its configuration includes, then run resync --pair ${pair.name}` }];
  } catch (err) {
    return [{ level: 'warning', message: `cannot check that ${pair.slave.ref} keeps its settings after a restart: ${messageOf(err)}` }];
  }
}

