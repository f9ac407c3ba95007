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
  /** Oldest WAL the slot keeps (null once it is lost, or before it reserved any). */
  restartLsn: string | null;
  /** pg_replication_slots.wal_status: reserved, extended, unreserved or lost. */
  walStatus: string | null;
}

/** One line of a timeline history file: `tli` ended at `switchpoint`, where the next one forked off. */
export interface TimelineSwitch {
  tli: number;
  switchpoint: string;
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
  /** When `lsn` was read (ms since the epoch): the first reading of the WAL rate the plan estimates. */
  readAtMs?: number;
  /** Standby: pg_last_wal_receive_lsn(), the WAL it has received (null before its receiver ran since it started). */
  receiveLsn: string | null;
  /**
   * Seconds since a WAL segment file in pg_wal was last written. On a standby that is when it
   * last received WAL from its upstream (the WAL receiver writes every byte it gets; a master
   * that shuts down cleanly sends its shutdown checkpoint first). Null when the login may not
   * list pg_wal (pg_ls_waldir needs a superuser or pg_monitor).
   */
  walWriteAgeSeconds: number | null;
  /**
   * The timeline: a primary's current one (from its current WAL file name); a standby's newest
   * known one (its last restartpoint's, or the newest history file in its pg_wal, whichever is
   * higher). Null when it cannot be read.
   */
  timeline: number | null;
  /** A primary's timeline history (the timelines its current one descends from); [] on timeline 1; null when not read. */
  timelineHistory: TimelineSwitch[] | null;
  /** The oldest WAL segment still in pg_wal, as its log and segment number (16 hex digits, no timeline); null when not listed. */
  oldestWalSegment: string | null;
  walSegmentSize: number;
  /** A standby with a restore_command can fetch WAL the master no longer has from an archive. */
  hasRestoreCommand: boolean;
  /** max_slot_wal_keep_size in bytes; null: unlimited (-1). */
  maxSlotWalKeepBytes: number | null;
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
            pg_last_wal_receive_lsn()::text AS receive_lsn,
            extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age,
            (CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END) AS wal_file,
            (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
            (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')::text AS wal_segment_size,
            (SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size')::text AS max_slot_wal_keep_mb,
            coalesce((SELECT setting FROM pg_settings WHERE name = 'restore_command'), '') <> '' AS has_restore_command`,
  );
  const r = rows[0]!;
  const receiver = await sql.query<{ status: string; sender_host: string | null; sender_port: number | null; slot_name: string | null }>(
    'SELECT status, sender_host, sender_port, slot_name FROM pg_stat_wal_receiver',
  );
  const clients = await sql.query<{ pid: number; application_name: string; state: string; replay_lag: number | null }>(
    `SELECT pid, application_name, state, extract(epoch FROM replay_lag)::float8 AS replay_lag
       FROM pg_stat_replication`,
  );
  // wal_status arrived in PostgreSQL 13.
  const slots = await sql
    .query<{ slot_name: string; slot_type: string; active: boolean; active_pid: number | null; restart_lsn: string | null; wal_status: string | null }>(
      'SELECT slot_name, slot_type, active, active_pid, restart_lsn::text AS restart_lsn, wal_status FROM pg_replication_slots',
    )
    .catch(() => sql.query<{ slot_name: string; slot_type: string; active: boolean; active_pid: number | null; restart_lsn: string | null; wal_status: string | null }>(
      'SELECT slot_name, slot_type, active, active_pid, restart_lsn::text AS restart_lsn, NULL::text AS wal_status FROM pg_replication_slots',
    ));
  const waldir = await walDir(sql).catch(() => null);
  const inRecovery = Boolean(r.in_recovery);
  const walFileTli = r.wal_file ? parseInt(String(r.wal_file).slice(0, 8), 16) : null;
  const timeline = inRecovery ? maxOf(Number(r.checkpoint_tli) || null, waldir?.newestHistoryTli ?? null) : walFileTli;
  const history = !inRecovery && timeline !== null ? await timelineHistory(sql, timeline).catch(() => null) : null;
  // -1 (and before PostgreSQL 13, no such setting): no limit.
  const keepMb = r.max_slot_wal_keep_mb === null ? -1 : Number(r.max_slot_wal_keep_mb);
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
    inRecovery,
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
    readAtMs: Date.now(),
    receiveLsn: r.receive_lsn === null ? null : String(r.receive_lsn),
    walWriteAgeSeconds: waldir?.newestAgeSeconds ?? null,
    timeline,
    timelineHistory: history,
    oldestWalSegment: waldir?.oldestSegment ?? null,
    walSegmentSize: Number(r.wal_segment_size) || 16 * 1024 * 1024,
    hasRestoreCommand: Boolean(r.has_restore_command),
    maxSlotWalKeepBytes: keepMb >= 0 ? keepMb * 1024 * 1024 : null,
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
    slots: slots.rows.map((s) => ({ name: s.slot_name, type: s.slot_type, active: s.active, activePid: s.active_pid, restartLsn: s.restart_lsn, walStatus: s.wal_status })),
    hbaRules: rules,
  };
}

function maxOf(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
}

/**
 * What pg_wal holds: how long ago a segment file was last written, the oldest segment kept,
 * and the newest timeline history file. pg_ls_waldir needs a superuser or pg_monitor.
 */
async function walDir(sql: Sql): Promise<{ newestAgeSeconds: number | null; oldestSegment: string | null; newestHistoryTli: number | null }> {
  const { rows } = await sql.query<{ newest_age: number | null; oldest_segment: string | null; newest_history: string | null }>(
    `SELECT extract(epoch FROM now() - max(modification) FILTER (WHERE name ~ '^[0-9A-F]{24}$'))::float8 AS newest_age,
            min(substring(name FROM 9)) FILTER (WHERE name ~ '^[0-9A-F]{24}$') AS oldest_segment,
            max(name) FILTER (WHERE name ~ '^[0-9A-F]{8}[.]history$') AS newest_history
       FROM pg_ls_waldir()`,
  );
  const w = rows[0];
  return {
    newestAgeSeconds: w?.newest_age === null || w?.newest_age === undefined ? null : Math.max(0, Number(w.newest_age)),
    oldestSegment: w?.oldest_segment ?? null,
    newestHistoryTli: w?.newest_history ? parseInt(w.newest_history.slice(0, 8), 16) : null,
  };
}

/** A primary's timeline history file (pg_wal/<tli>.history; pg_read_file needs a superuser or pg_read_server_files). */
async function timelineHistory(sql: Sql, tli: number): Promise<TimelineSwitch[]> {
  if (tli <= 1) return [];
  const name = `pg_wal/${tli.toString(16).toUpperCase().padStart(8, '0')}.history`;
  const { rows } = await sql.query<{ text: string }>('SELECT pg_read_file($1) AS text', [name]);
  return parseTimelineHistory(rows[0]?.text ?? '');
}

/** `1\t0/3000000\tno recovery target specified` lines: the parent timeline and where it ended. */
export function parseTimelineHistory(text: string): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(line);
    if (m) out.push({ tli: Number(m[1]), switchpoint: m[2]!.toUpperCase() });
  }
  return out;
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
