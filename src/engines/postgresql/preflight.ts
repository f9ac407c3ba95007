import { DbreplError, messageOf } from '../../errors';
import { writableTarget } from '../../hosts/files';
import { checkFreeSpace, freeBytes } from '../../hosts/rebuild';
import { humanBytes } from '../../util/bytes';
import type { Pair } from '../../model';
import { checkHostCanWork, finding, Finding, hostOrError, Session, sharedMachine, Sides } from '../engine';
import type { ActionPlan, ChangeAction } from '../engine';
import { copySecondsEstimate, during, highestRate, sampleRate } from '../retention';
import { Sql, withClient } from './client';
import { lsnToBigInt } from './lsn';
import { hbaDecision } from './hba';
import { databaseBytes, PgFacts } from './inspect';
import { hbaRefusal } from './master';
import { findBasebackup, standbyShortfalls, verifyHost } from './slave';
import { DEFAULT_SERVICE, restartSettings, slotName } from './state';
import { replicationTls } from '../tls';
import { fenceOverrideMessage, fenceOverrides, major } from './steps';

/**
 * Every check of an enable or resync that changes nothing, with the servers and hosts it
 * needs: run by plan, and again by apply after its lock, before the first change.
 */
export async function preflight(pair: Pair, { m, s }: Sides<PgFacts>, planned: { action: ChangeAction; plan: ActionPlan } | null, session: Session): Promise<Finding[]> {
  if (planned?.action === 'disable' && pair.fence && m) {
    const overrides = await withClient(session, pair.master, fenceOverrides);
    return overrides.length > 0 ? [{ level: 'error', message: fenceOverrideMessage(pair, overrides) }] : [];
  }
  if (!planned || planned.action === 'disable') return [];
  const out: Finding[] = [];
  const error = (message: string): void => void out.push({ level: 'error', message });
  const user = pair.replication.user ?? '';
  // A master whose new sessions are read-only (fenced by a disable, or by hand) refuses the role and the slot.
  const masterReadOnly = await withClient(session, pair.master, async (sql) => (await sql.query<{ ro: string }>("SELECT current_setting('default_transaction_read_only') AS ro")).rows[0]!.ro === 'on');
  if (masterReadOnly && !m.inRecovery) {
    error(`${pair.master.ref} is read-only for new sessions (default_transaction_read_only = on: fenced by a disable, or set by hand), so the replication role and slot cannot be created there; make it writable first (ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf()) if it is still meant to be a master`);
  }

  if (major(m) !== major(s)) {
    error(`major versions differ (master ${m.versionNum}, slave ${s.versionNum}); physical replication needs the same major version`);
  }
  if (!s.inRecovery && (s.clients.length > 0 || s.slots.length > 0)) {
    error(`${pair.slave.ref} is a primary with replication of its own (${s.clients.length} connection(s), ${s.slots.length} slot(s)); refusing to overwrite a master — remove its slots and standbys first, or fix the file`);
  }
  const short = standbyShortfalls(m, s);
  if (short.length > 0) {
    error(`the slave's own settings are lower than the master's (${short.join(', ')}); a standby refuses to run with them: raise them in ${pair.slave.ref}'s configuration first`);
  }
  const tlsMode = replicationTls(pair.master);
  if (tlsMode !== 'none' && !m.ssl) error(`${pair.master.ref} has tls (${tlsMode}) in the file but serves no TLS (ssl = off): turn ssl on there first`);
  if (tlsMode === 'verify-full' && !pair.master.tls?.ca) {
    error(`replication from ${pair.master.ref} with tls verify-full needs tls.ca: libpq on the slave verifies the master's certificate against a CA file`);
  }
  const hba = m.hbaRules ? hbaDecision(m.hbaRules, user, pair.slave.host, tlsMode !== 'none' || m.ssl) : null;
  if (hba?.kind === 'refused') error(hbaRefusal(pair, user, m.hbaFile, hba));
  // The WAL rate is sampled while the other checks run (its second reading waits for time to pass).
  const retention = walRetention(session, pair, m);
  out.push(...(await finding('error', () => checkLoginSurvives(session, pair))));

  const slaveHost = await hostOrError(session, pair.slave, error);
  const masterWork = hba?.kind !== 'admitted' || Object.keys(restartSettings(m, slotName(pair))).length > 0;
  // The master's host: for its own work, and to know whether the two share a machine.
  const masterHost = masterWork || !pair.slave.service ? await hostOrError(session, pair.master, masterWork ? error : () => undefined) : null;
  if (slaveHost) {
    out.push(...(await finding('error', () => verifyHost(slaveHost, pair.slave, s))));
    if (!pair.slave.service && (pair.slave.host === pair.master.host || (masterHost && (await sharedMachine(slaveHost, masterHost))))) {
      error(`${pair.slave.ref} runs on the same host as its master and has no service commands; the default (${DEFAULT_SERVICE.stop}) would stop every cluster there, the master included: set service.stop and service.start for ${pair.slave.ref}`);
    }
    out.push(...(await finding('error', async () => checkFreeSpace(slaveHost, s.dataDirectory, await withClient(session, pair.master, databaseBytes), pair.master.ref))));
    out.push(...(await finding('error', () => findBasebackup(slaveHost, major(s)))));
  }
  const restart = Object.keys(restartSettings(m, slotName(pair))).length > 0;
  if (restart && !pair.master.service && slaveHost && masterHost && (await sharedMachine(slaveHost, masterHost))) {
    error(`${pair.master.ref} must restart and has no service commands; the default (${DEFAULT_SERVICE.stop}) would stop every cluster of that host, ${pair.slave.ref} included: set service.stop and service.start for ${pair.master.ref}`);
  }
  out.push(...(await finding('error', () => checkReplicationRole(session, pair, m))));
  out.push(...(await finding('warning', () => checkSuperuserLogin(session, pair))));
  if (masterWork && masterHost) {
    out.push(...(await finding('error', () => checkHostCanWork(masterHost, pair.master))));
    out.push(...(await finding('error', () => verifyHost(masterHost, pair.master, m))));
    if (hba?.kind !== 'admitted') out.push(...(await finding('error', () => writableTarget(masterHost, m.hbaFile, pair.master.followSymlinks))));
  }
  if (!m.hbaRules) {
    out.push({ level: 'warning', message: `the login for ${pair.master.ref} may not read pg_hba_file_rules (not a superuser?): whether a rule admits the slave is decided during apply` });
  }
  out.push(...(await retention));
  return out;
}

/**
 * The WAL the master writes while the slave is copied, against what can hold it: the slot
 * keeps it all (up to max_slot_wal_keep_size), on the master's disk. Warnings only: the rate
 * is an estimate.
 */
async function walRetention(session: Session, pair: Pair, m: PgFacts): Promise<Finding[]> {
  if (session.recheck) return [];
  try {
    const bytes = await withClient(session, pair.master, databaseBytes);
    const rate = await withClient(session, pair.master, (sql) => walRate(sql, m));
    if (rate === null) return [];
    let free: number | null = null;
    try {
      // Only on the machine that runs the master (the same proof apply asks for before it works there).
      const host = await session.hosts.forServer(pair.master);
      await verifyHost(host, pair.master, m);
      free = await freeBytes(host, `${m.dataDirectory}/pg_wal`);
    } catch {
      free = null;
    }
    return walRetentionWarnings(pair, m, { copySeconds: copySecondsEstimate(bytes), walBytesPerSecond: rate, freeBytes: free }).map((message) => ({ level: 'warning' as const, message }));
  } catch (err) {
    return [{ level: 'warning', message: `cannot estimate the WAL ${pair.master.ref} writes during the copy: ${messageOf(err)}` }];
  }
}

/**
 * The master's WAL rate, bytes/s: the larger of two readings of its WAL position (the
 * inspection's and one at least 250 ms later; without it, two a second apart) and the average since pg_stat_wal was last reset (PostgreSQL 14+; a busy second and a
 * busy day both count).
 */
async function walRate(sql: Sql, m: Pick<PgFacts, 'inRecovery' | 'lsn' | 'readAtMs'>): Promise<number | null> {
  const position = m.inRecovery ? 'pg_last_wal_replay_lsn()' : 'pg_current_wal_lsn()';
  const read = async (): Promise<number | null> => {
    const { rows } = await sql.query<{ lsn: string | null }>(`SELECT ${position}::text AS lsn`);
    return rows[0]?.lsn ? Number(lsnToBigInt(rows[0].lsn)) : null;
  };
  // The inspection's reading is the first: the second is taken at least 250 ms later, not a second.
  const first = m.lsn && m.readAtMs ? { value: Number(lsnToBigInt(m.lsn)), at: m.readAtMs } : undefined;
  const sampled = await sampleRate(read, first ? 250 : 1000, first);
  const average = await sql
    .query<{ bytes: number | null; seconds: number | null }>('SELECT wal_bytes::float8 AS bytes, extract(epoch FROM now() - stats_reset)::float8 AS seconds FROM pg_stat_wal')
    .then(({ rows }) => (rows[0]?.bytes != null && rows[0].seconds != null && rows[0].seconds > 60 ? rows[0].bytes / rows[0].seconds : null))
    .catch(() => null);
  return highestRate(sampled, average);
}

/** Pure: the warnings for `walBytesPerSecond` over the estimated copy. */
export function walRetentionWarnings(pair: Pair, m: Pick<PgFacts, 'maxSlotWalKeepBytes'>, o: { copySeconds: number; walBytesPerSecond: number; freeBytes: number | null }): string[] {
  const wal = o.walBytesPerSecond * o.copySeconds;
  if (wal <= 0) return [];
  const slot = slotName(pair);
  const what = during(o.walBytesPerSecond, o.copySeconds);
  const out: string[] = [];
  if (m.maxSlotWalKeepBytes !== null && wal > m.maxSlotWalKeepBytes) {
    out.push(`${pair.master.ref} writes ${what} of WAL during the estimated copy, more than its max_slot_wal_keep_size (${humanBytes(m.maxSlotWalKeepBytes)}): the slot ${slot} can be invalidated before ${pair.slave.ref} streams from it, and the new slave would be broken at once; raise max_slot_wal_keep_size first`);
  }
  if (o.freeBytes !== null && wal > o.freeBytes) {
    out.push(`${pair.master.ref} has ${humanBytes(o.freeBytes)} free for pg_wal, less than the WAL it writes during the estimated copy (${what}), which the slot ${slot} keeps: free space there first`);
  }
  return out;
}


/**
 * A physical copy carries the master's roles: once rebuilt, the slave only accepts the
 * logins the master has. Refuse before anything changes if the slave's admin login from
 * the file would not work there, instead of leaving a slave the tool can no longer manage.
 */
async function checkLoginSurvives(session: Session, pair: Pair): Promise<void> {
  try {
    await withClient(session, pair.master, async () => undefined, { user: pair.slave.user, password: pair.slave.password });
  } catch (err) {
    throw new DbreplError(
      'STEP',
      `after the copy ${pair.slave.ref} will have the roles of ${pair.master.ref}, but its login from the file (user ${pair.slave.user ?? 'postgres'}) does not work on ${pair.master.ref}: ${messageOf(err).replace(/^[^:]+: /, '')}; give both servers the same admin user and password`,
      { cause: err },
    );
  }
}

async function replicationRole(session: Session, pair: Pair): Promise<{ rolsuper: boolean; rolreplication: boolean; rolcanlogin: boolean } | undefined> {
  return withClient(session, pair.master, async (sql) =>
    (await sql.query<{ rolsuper: boolean; rolreplication: boolean; rolcanlogin: boolean }>('SELECT rolsuper, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = $1', [pair.replication.user ?? ''])).rows[0],
  );
}

/** On a cascading master (a standby) the replication role cannot be created: it must have arrived from the root. */
async function checkReplicationRole(session: Session, pair: Pair, m: PgFacts): Promise<void> {
  if (!m.inRecovery) return;
  const role = await replicationRole(session, pair);
  if (!role || !role.rolcanlogin || !(role.rolreplication || role.rolsuper)) {
    throw new DbreplError('STEP', `${pair.master.ref} is itself a standby, so the role ${pair.replication.user} cannot be created there; it must exist with REPLICATION LOGIN on the primary it replicates from (enable that pair first, with the same replication user)`);
  }
}

/**
 * A superuser's password is never changed, so the pair's password must already be it. Tried
 * from the runner (whose address pg_hba.conf may treat differently from the slave's): a
 * warning, not a refusal.
 */
async function checkSuperuserLogin(session: Session, pair: Pair): Promise<void> {
  const role = await replicationRole(session, pair);
  if (!role?.rolsuper) return;
  await withClient(session, pair.master, async () => undefined, { user: pair.replication.user, password: pair.replication.password }).catch((err: unknown) => {
    throw new DbreplError('STEP', `the replication login ${pair.replication.user} is a superuser whose password dbrepl does not change, and logging in with the pair's password failed from the runner (${messageOf(err).replace(/^[^:]+: /, '')}); pg_basebackup will fail unless that password is right`);
  });
}
