import { DbreplError } from '../../errors';
import { runChecked } from '../../hosts/commands';
import { readServerFile, writableTarget, writeFile } from '../../hosts/files';
import type { Host } from '../../hosts/host';
import { SERVICE_TIMEOUT_MS } from '../../hosts/limits';
import type { Pair, Server } from '../../model';
import { pollUntil } from '../../util/poll';
import type { Session } from '../engine';
import { serviceArgv } from '../service';
import { withClient, Sql } from './client';
import { hbaDecision, hbaLine } from './hba';
import { hbaRules, readFacts } from './inspect';
import { scramVerifier } from './scram';
import { service, START_TIMEOUT_MS } from './state';

/**
 * The replication role. On a primary it is created or its password set (as a SCRAM
 * verifier, never in clear); a superuser's password is never changed. On a standby (a
 * cascading master) nothing can be written: the role must have replicated from the root.
 */
export async function ensureRole(sql: Sql, master: Server, user: string, password: string): Promise<void> {
  const { rows } = await sql.query<{ rolsuper: boolean; rolreplication: boolean; rolcanlogin: boolean }>(
    'SELECT rolsuper, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = $1',
    [user],
  );
  const role = rows[0];
  const inRecovery = (await sql.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
  if (inRecovery) {
    if (!role || !role.rolcanlogin || !(role.rolreplication || role.rolsuper)) {
      throw new DbreplError('STEP', `${master.ref} is itself a standby, so the role ${user} cannot be created there; it must exist with REPLICATION LOGIN on the primary it replicates from (enable that pair first, with the same replication user)`);
    }
    return;
  }
  const ident = sql.escapeIdentifier(user);
  const verifier = sql.escapeLiteral(scramVerifier(password));
  if (!role) await sql.query(`CREATE ROLE ${ident} WITH REPLICATION LOGIN PASSWORD ${verifier}`);
  else if (role.rolsuper) await sql.query(`ALTER ROLE ${ident} WITH LOGIN`);
  else await sql.query(`ALTER ROLE ${ident} WITH REPLICATION LOGIN PASSWORD ${verifier}`);
}

/** One physical slot per slave; an existing one is kept (it already retains WAL from before the backup starts). Returns whether it was created now. */
/**
 * The slot, created when missing. A lost one (wal_status lost: WAL it needed was removed) is
 * never reused: it is dropped and created again, reserving WAL from now. `creating` runs first
 * (the caller journals that the slot is its own from then on). True when this call created it.
 */
export async function ensureSlot(sql: Sql, slot: string, where: string, creating: () => Promise<void>): Promise<boolean> {
  const { rows } = await sql.query<{ lost: boolean }>("SELECT to_jsonb(s)->>'wal_status' = 'lost' AS lost FROM pg_replication_slots s WHERE slot_name = $1", [slot]);
  if (rows.length > 0 && !rows[0]!.lost) return false;
  await creating();
  if (rows.length > 0) await dropSlotWhenFree(sql, slot, where);
  await sql.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
  return true;
}

export async function dropSlotWhenFree(sql: Sql, slot: string, where: string): Promise<void> {
  await pollUntil(`slot ${slot} on ${where} to become inactive`, 60_000, async () => {
    const { rows } = await sql.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    return rows.length === 0 || !rows[0]!.active ? true : undefined;
  });
  await sql.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
}

/**
 * Adds the rule at the top of the master's pg_hba file (first match wins), unless the
 * rules on disk admit the slave, and reloads either way (a file edited by a run that was
 * stopped before its reload is not in force). An operator's refusing rule found now (it
 * was not there at plan time) stops the step: policy is never overridden.
 */
export async function addHbaRule(session: Session, pair: Pair, masterHost: () => Promise<Host>, user: string, tls: boolean): Promise<void> {
  await withClient(session, pair.master, async (sql) => {
    const facts = await readFacts(sql);
    const decision = hbaDecision(await hbaRules(sql), user, pair.slave.host, tls || facts.ssl);
    if (decision.kind === 'refused') throw new DbreplError('STEP', hbaRefusal(pair, user, facts.hbaFile, decision));
    if (decision.kind === 'admitted') {
      await sql.query('SELECT pg_reload_conf()');
      return;
    }
    const host = await masterHost();
    const { target: file } = await writableTarget(host, facts.hbaFile, pair.master.followSymlinks);
    const before = await readServerFile(host, file);
    if (before === null) throw new DbreplError('STEP', `cannot read ${file} on ${host.label}`);
    const method = facts.passwordEncryption === 'md5' ? 'md5' : 'scram-sha-256';
    const added = `# dbrepl: replication login ${user} from ${pair.slave.host} (first added for ${pair.slave.ref})\n${hbaLine(user, pair.slave.host, method, tls)}\n`;
    await writeFile(host, file, added + before);
    const errors = (await hbaRules(sql)).filter((r) => r.error);
    if (errors.length > 0) {
      await writeFile(host, file, before);
      throw new DbreplError('STEP', `the new pg_hba.conf did not parse (${errors[0]!.error}); the file was put back`);
    }
    await sql.query('SELECT pg_reload_conf()');
  });
}

export function hbaRefusal(pair: Pair, user: string, file: string, d: { line: number; rule: string; why: string }): string {
  return `${file} on ${pair.master.ref} line ${d.line} ("${d.rule}") decides the replication login ${user} from ${pair.slave.host} (${d.why}); dbrepl does not override an operator's rule: change or remove that line, or give the slave an address it admits`;
}

/**
 * ALTER SYSTEM the restart-only settings, restart with the master's service commands, and
 * check they took. `keep` receives postgresql.auto.conf as it was, for the undo.
 */
export async function restartMaster(session: Session, master: Server, host: Host, settings: Record<string, string>, keep: (autoConf: { file: string; text: string | null }) => void | Promise<void>): Promise<void> {
  const file = `${(await withClient(session, master, readFacts)).dataDirectory}/postgresql.auto.conf`;
  await keep({ file, text: await readServerFile(host, file) });
  const before = await withClient(session, master, async (sql) => {
    for (const [k, v] of Object.entries(settings)) await sql.query(`ALTER SYSTEM SET ${sql.escapeIdentifier(k)} = ${sql.escapeLiteral(v)}`);
    return (await readFacts(sql)).startEpoch;
  });
  await runChecked(host, serviceArgv(service(master).stop), `stop command of ${master.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
  await runChecked(host, serviceArgv(service(master).start), `start command of ${master.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
  await pollUntil(`${master.ref} to come back restarted with ${Object.keys(settings).join(', ')} applied`, START_TIMEOUT_MS, () =>
    withClient(session, master, async (sql) => {
      const f = await readFacts(sql);
      if (f.startEpoch === before) return undefined;
      const { rows } = await sql.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1)', [Object.keys(settings)]);
      return rows.every((r) => r.setting === settings[r.name]) ? true : undefined;
    }),
  );
}

/**
 * The undo of a restart that did not bring the master back: its postgresql.auto.conf as it
 * was, and a start. A master that answers keeps the new settings (they only allow more).
 */
export async function restoreMaster(session: Session, master: Server, host: Host, auto: { file: string; text: string | null }): Promise<string> {
  const answers = await withClient(session, master, async () => true).catch(() => false);
  if (answers) return '';
  if (auto.text !== null) await writeFile(host, auto.file, auto.text);
  await runChecked(host, serviceArgv(service(master).start), `start command of ${master.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
  await pollUntil(`${master.ref} to answer again`, START_TIMEOUT_MS, () => withClient(session, master, async () => true));
  return `the master's postgresql.auto.conf was put back and ${master.ref} started again`;
}
