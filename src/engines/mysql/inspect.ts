import type { RowDataPacket } from 'mysql2/promise';
import type { Server } from '../../model';
import type { Session } from '../engine';
import { withClient, Sql } from './client';
import { Dialect, dialectFor, parseVersion, Version } from './dialect';

/** Replica status, read by column name in either spelling (Slave_/Master_ or Replica_/Source_). */
export interface ReplicaStatus {
  sourceHost: string;
  sourcePort: number;
  sourceUser: string;
  ioRunning: string;
  sqlRunning: string;
  /** NULL when a thread is stopped or the link is down: never read as 0. */
  secondsBehind: number | null;
  lastIoErrno: number;
  lastIoError: string;
  lastSqlErrno: number;
  lastSqlError: string;
  execSourceLogFile: string;
  execSourceLogPos: number;
  usingGtid: string;
  gtidPosition: string;
  /** MySQL: Retrieved_Gtid_Set, what the IO thread has received (MariaDB's Gtid_IO_Pos is gtidPosition). */
  retrievedGtids: string;
}

/**
 * When the slave last heard from its master, where the server can tell (JSON-safe numbers).
 * - MySQL 8: performance_schema.replication_connection_status, seconds since the later of
 *   LAST_HEARTBEAT_TIMESTAMP and LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP, and the
 *   heartbeat period (replication_connection_configuration.HEARTBEAT_INTERVAL).
 * - MariaDB 10.11 records no such time (no Slave_last_heartbeat status, performance_schema off by
 *   default and without replication_connection_status): the age of the last event its SQL
 *   thread applied (processlist TIME of Slave_SQL: seconds since that event's timestamp).
 */
export interface LinkTiming {
  contactAgeSeconds: number | null;
  heartbeatPeriodSeconds: number | null;
  sqlThreadEventAgeSeconds: number | null;
}

/** What a MariaDB server's host offers for a physical copy (physical.ts reads it at inspection for plan and apply). */
export interface CopyHost {
  /** Why host commands cannot work on this server's machine; null when they can. */
  error: string | null;
  label: string;
  bootId: string;
  netns: string;
  /** major.minor of the mariabackup there (it must be the server's own), null if absent. */
  mariabackup: string | null;
  mbstream: boolean;
  /** openssl (s_server/s_client carry the stream between two hosts, over TLS with one-time certificates). */
  openssl: boolean;
  /** The data directory is a mount point: it cannot be swapped by a rename. */
  datadirMountPoint: boolean;
  /** Settings that put the server's files outside its data directory (`name = value`). */
  outside: string[];
}

/** Read-only facts about one MySQL/MariaDB server. Nothing here holds a password. */
export interface MyFacts {
  version: Version;
  serverId: number;
  logBin: boolean;
  gtidMode: string | null;
  readOnly: boolean;
  superReadOnly: boolean | null;
  datadir: string;
  pidFile: string;
  executedGtids: string;
  binlogFile: string | null;
  binlogPos: number | null;
  replica: ReplicaStatus | null;
  /** Hosts of the binlog dump threads the server serves (its live slaves). */
  dumpClients: string[];
  currentUser: string;
  hostname: string;
  port: number;
  /** MySQL's @@server_uuid; MariaDB has none. */
  serverUuid: string | null;
  /** MariaDB's @@gtid_slave_pos: where its replication stood (put back after a failed rebuild). */
  gtidSlavePos: string | null;
  /** A slave's: when it last heard from its master (null on a server that replicates from nobody). */
  linkTiming: LinkTiming | null;
  /** Databases other than the system ones (mysql, information_schema, performance_schema, sys). */
  userSchemas: number;
  /** What its host offers for a physical copy (plan, apply and resync read it; status does not). */
  copyHost?: CopyHost;
}

export function col(row: RowDataPacket, ...names: string[]): unknown {
  for (const n of names) if (n in row) return row[n];
  return undefined;
}

function str(v: unknown): string {
  return v === null || v === undefined ? '' : String(v);
}

export function readReplicaStatus(row: RowDataPacket | undefined): ReplicaStatus | null {
  if (!row) return null;
  const host = str(col(row, 'Source_Host', 'Master_Host'));
  if (!host) return null;
  const behind = col(row, 'Seconds_Behind_Source', 'Seconds_Behind_Master');
  return {
    sourceHost: host,
    sourcePort: Number(col(row, 'Source_Port', 'Master_Port')),
    sourceUser: str(col(row, 'Source_User', 'Master_User')),
    ioRunning: str(col(row, 'Replica_IO_Running', 'Slave_IO_Running')),
    sqlRunning: str(col(row, 'Replica_SQL_Running', 'Slave_SQL_Running')),
    secondsBehind: behind === null || behind === undefined || behind === '' ? null : Number(behind),
    lastIoErrno: Number(col(row, 'Last_IO_Errno') ?? 0),
    lastIoError: str(col(row, 'Last_IO_Error')),
    lastSqlErrno: Number(col(row, 'Last_SQL_Errno') ?? 0),
    lastSqlError: str(col(row, 'Last_SQL_Error')),
    execSourceLogFile: str(col(row, 'Relay_Source_Log_File', 'Relay_Master_Log_File')),
    execSourceLogPos: Number(col(row, 'Exec_Source_Log_Pos', 'Exec_Master_Log_Pos') ?? 0),
    usingGtid: str(col(row, 'Using_Gtid', 'Auto_Position')),
    gtidPosition: str(col(row, 'Gtid_IO_Pos', 'Executed_Gtid_Set')),
    retrievedGtids: str(col(row, 'Retrieved_Gtid_Set')).replace(/\s+/g, ''),
  };
}

export async function inspectMysql(server: Server, session: Session): Promise<MyFacts> {
  return withClient(session, server, readFacts);
}

export async function dialectOf(sql: Sql): Promise<Dialect> {
  const [row] = await sql.query('SELECT VERSION() AS v');
  return dialectFor(parseVersion(String(row!.v)));
}

export async function readFacts(sql: Sql): Promise<MyFacts> {
  const d = await dialectOf(sql);
  const mysql = d.version.flavour === 'mysql';
  const [v] = await sql.query(
    `SELECT @@server_id AS server_id, @@log_bin AS log_bin, @@read_only AS read_only, @@datadir AS datadir, @@pid_file AS pid_file,
            ${mysql ? '@@super_read_only' : 'NULL'} AS super_read_only, ${mysql ? '@@gtid_mode' : 'NULL'} AS gtid_mode,
            ${d.executedGtids} AS executed, CURRENT_USER() AS current_user_, @@hostname AS hostname, @@port AS port,
            ${mysql ? '@@server_uuid' : 'NULL'} AS server_uuid, ${mysql ? 'NULL' : '@@GLOBAL.gtid_slave_pos'} AS gtid_slave_pos`,
  );
  const [status] = await sql.query(d.replicaStatus);
  const binlog = v!.log_bin == 1 ? (await sql.query(d.binlogStatus))[0] : undefined;
  const replica = readReplicaStatus(status);
  const [schemas] = await sql.query(
    `SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE LOWER(SCHEMA_NAME) NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')`,
  );
  const dumps = await sql.query(
    `SELECT HOST AS host FROM information_schema.PROCESSLIST WHERE COMMAND IN ('Binlog Dump', 'Binlog Dump GTID')`,
  );
  return {
    version: d.version,
    serverId: Number(v!.server_id),
    logBin: Number(v!.log_bin) === 1,
    gtidMode: v!.gtid_mode === null ? null : String(v!.gtid_mode),
    readOnly: Number(v!.read_only) === 1,
    superReadOnly: v!.super_read_only === null ? null : Number(v!.super_read_only) === 1,
    datadir: String(v!.datadir).replace(/\/+$/, ''),
    pidFile: String(v!.pid_file),
    executedGtids: String(v!.executed ?? '').replace(/\s+/g, ''),
    binlogFile: binlog ? str(col(binlog, 'File')) : null,
    binlogPos: binlog ? Number(col(binlog, 'Position')) : null,
    replica,
    dumpClients: dumps.map((r) => String(r.host).replace(/:\d+$/, '')),
    currentUser: String(v!.current_user_),
    hostname: String(v!.hostname),
    port: Number(v!.port),
    serverUuid: v!.server_uuid ? String(v!.server_uuid) : null,
    gtidSlavePos: v!.gtid_slave_pos === null || v!.gtid_slave_pos === undefined ? null : String(v!.gtid_slave_pos),
    linkTiming: replica ? await linkTiming(sql, mysql) : null,
    userSchemas: Number(schemas!.n),
  };
}

const num = (v: unknown): number | null => (v === null || v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v));

/** Each read on its own: a table the login may not read, or performance_schema off, leaves that value null. */
async function linkTiming(sql: Sql, mysql: boolean): Promise<LinkTiming> {
  const out: LinkTiming = { contactAgeSeconds: null, heartbeatPeriodSeconds: null, sqlThreadEventAgeSeconds: null };
  if (mysql) {
    const [c] = await sql
      .query(
        `SELECT UNIX_TIMESTAMP(NOW(6)) AS now_, UNIX_TIMESTAMP(s.LAST_HEARTBEAT_TIMESTAMP) AS hb,
                UNIX_TIMESTAMP(s.LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP) AS queued, c.HEARTBEAT_INTERVAL AS period
           FROM performance_schema.replication_connection_status s
           JOIN performance_schema.replication_connection_configuration c ON c.CHANNEL_NAME = s.CHANNEL_NAME
          WHERE s.CHANNEL_NAME = ''`,
      )
      .catch(() => [undefined]);
    if (c) {
      // A timestamp never set reads 0000-00-00, UNIX_TIMESTAMP 0.
      const last = Math.max(num(c.hb) ?? 0, num(c.queued) ?? 0);
      const now = num(c.now_);
      out.contactAgeSeconds = last > 0 && now !== null ? Math.max(0, now - last) : null;
      out.heartbeatPeriodSeconds = num(c.period);
    }
  } else {
    const [t] = await sql.query(`SELECT TIME AS t FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_SQL' LIMIT 1`).catch(() => [undefined]);
    out.sqlThreadEventAgeSeconds = t ? num(t.t) : null;
    const [p] = await sql.query(`SHOW GLOBAL STATUS LIKE 'Slave_heartbeat_period'`).catch(() => [undefined]);
    out.heartbeatPeriodSeconds = p ? num(p.Value) : null;
  }
  return out;
}
