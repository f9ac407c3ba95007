import type { Server } from '../../model';
import type { Session } from '../engine';
import { parseConninfo } from './conninfo';
import { withClient, Sql } from './client';
import type { HbaRule } from './hba';

export interface WalReceiver {
  status: string;
  senderHost: string | null;
  senderPort: number | null;
  slotName: string | null;
}

export interface ReplicationClient {
  pid: number;
  applicationName: string;
  state: string;
  replayLagSeconds: number | null;
}

export interface Slot {
  name: string;
  type: string;
  active: boolean;
  activePid: number | null;
}

/** Read-only facts about one PostgreSQL server. Nothing here holds a password. */
export interface PgFacts {
  versionNum: number;
  port: number;
  /** pg_postmaster_start_time() as a Unix time, as postmaster.pid records it. */
  startEpoch: number;
  /** The same to the microsecond (for identity: two servers do not start in the same microsecond). */
  startTime: string;
  /** Settings a standby must have at least as high as its primary. */
  standbyMinimums: Record<string, number>;
  inRecovery: boolean;
  systemId: string;
  dataDirectory: string;
  configFile: string;
  hbaFile: string;
  identFile: string;
  walLevel: string;
  maxWalSenders: number;
  maxReplicationSlots: number;
  ssl: boolean;
  passwordEncryption: string;
  /** Position written (primary) or replayed (standby). */
  lsn: string | null;
  /** Seconds since the last replayed transaction (standby). */
  replayAgeSeconds: number | null;
  /** host/port/application_name of primary_conninfo (password dropped). */
  upstream: { host: string | null; port: number | null; applicationName: string | null } | null;
  primarySlotName: string | null;
  receiver: WalReceiver | null;
  clients: ReplicationClient[];
  slots: Slot[];
  /** pg_hba_file_rules, or null when the login may not read them (not a superuser). */
  hbaRules: HbaRule[] | null;
}

/** A hot standby refuses to start (or pauses) when any of these is lower than on its primary. */
export const STANDBY_MINIMUMS = ['max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction'];

export async function inspectPostgres(server: Server, session: Session): Promise<PgFacts> {
  return withClient(session, server, readFacts);
}

export async function readFacts(sql: Sql): Promise<PgFacts> {
  const { rows } = await sql.query<Record<string, string | number | boolean | null>>(
    `SELECT current_setting('server_version_num')::int AS version_num,
            current_setting('port')::int AS port,
            floor(extract(epoch FROM pg_postmaster_start_time()))::bigint::text AS start_epoch,
            extract(epoch FROM pg_postmaster_start_time())::text AS start_time,
            pg_is_in_recovery() AS in_recovery,
            (SELECT system_identifier::text FROM pg_control_system()) AS system_id,
            current_setting('data_directory') AS data_directory,
            current_setting('config_file') AS config_file,
            current_setting('hba_file') AS hba_file,
            current_setting('ident_file') AS ident_file,
            current_setting('wal_level') AS wal_level,
            current_setting('max_wal_senders')::int AS max_wal_senders,
            current_setting('max_replication_slots')::int AS max_replication_slots,
            current_setting('ssl') = 'on' AS ssl,
            current_setting('password_encryption') AS password_encryption,
            current_setting('primary_conninfo') AS primary_conninfo,
            current_setting('primary_slot_name') AS primary_slot_name,
            (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
            extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age`,
  );
  const r = rows[0]!;
  const receiver = await sql.query<{ status: string; sender_host: string | null; sender_port: number | null; slot_name: string | null }>(
    'SELECT status, sender_host, sender_port, slot_name FROM pg_stat_wal_receiver',
  );
  const clients = await sql.query<{ pid: number; application_name: string; state: string; replay_lag: number | null }>(
    `SELECT pid, application_name, state, extract(epoch FROM replay_lag)::float8 AS replay_lag
       FROM pg_stat_replication`,
  );
  const slots = await sql.query<{ slot_name: string; slot_type: string; active: boolean; active_pid: number | null }>(
    'SELECT slot_name, slot_type, active, active_pid FROM pg_replication_slots',
  );
  const minimums = await sql.query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings WHERE name = ANY($1)`,
    [STANDBY_MINIMUMS],
  );
  const rules = await hbaRules(sql).catch(() => null);
  const conninfo = String(r.primary_conninfo ?? '');
  const ci = conninfo ? parseConninfo(conninfo) : null;
  const w = receiver.rows[0];
  return {
    versionNum: Number(r.version_num),
    port: Number(r.port),
    startEpoch: Number(r.start_epoch),
    startTime: String(r.start_time),
    standbyMinimums: Object.fromEntries(minimums.rows.map((m) => [m.name, Number(m.setting)])),
    inRecovery: Boolean(r.in_recovery),
    systemId: String(r.system_id),
    dataDirectory: String(r.data_directory),
    configFile: String(r.config_file),
    hbaFile: String(r.hba_file),
    identFile: String(r.ident_file),
    walLevel: String(r.wal_level),
    maxWalSenders: Number(r.max_wal_senders),
    maxReplicationSlots: Number(r.max_replication_slots),
    ssl: Boolean(r.ssl),
    passwordEncryption: String(r.password_encryption),
    lsn: r.lsn === null ? null : String(r.lsn),
    replayAgeSeconds: r.replay_age === null ? null : Number(r.replay_age),
    upstream: ci
      ? { host: ci.host ?? ci.hostaddr ?? null, port: ci.port ? Number(ci.port) : null, applicationName: ci.application_name ?? null }
      : null,
    primarySlotName: r.primary_slot_name ? String(r.primary_slot_name) : null,
    receiver: w ? { status: w.status, senderHost: w.sender_host, senderPort: w.sender_port, slotName: w.slot_name } : null,
    clients: clients.rows.map((c) => ({
      pid: c.pid,
      applicationName: c.application_name,
      state: c.state,
      replayLagSeconds: c.replay_lag,
    })),
    slots: slots.rows.map((s) => ({ name: s.slot_name, type: s.slot_type, active: s.active, activePid: s.active_pid })),
    hbaRules: rules,
  };
}

export async function hbaRules(sql: Sql): Promise<HbaRule[]> {
  const { rows } = await sql.query<HbaRule>(
    'SELECT line_number, type, database, user_name, address, netmask, auth_method, error FROM pg_hba_file_rules',
  );
  return rows;
}

/** What a full copy of the server moves: the size of every database. */
export async function databaseBytes(sql: Sql): Promise<number> {
  const { rows } = await sql.query<{ bytes: string }>('SELECT sum(pg_database_size(datname))::text AS bytes FROM pg_database');
  return Number(rows[0]!.bytes);
}
