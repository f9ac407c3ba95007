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
    replica: readReplicaStatus(status),
    dumpClients: dumps.map((r) => String(r.host).replace(/:\d+$/, '')),
    currentUser: String(v!.current_user_),
    hostname: String(v!.hostname),
    port: Number(v!.port),
    serverUuid: v!.server_uuid ? String(v!.server_uuid) : null,
    gtidSlavePos: v!.gtid_slave_pos === null || v!.gtid_slave_pos === undefined ? null : String(v!.gtid_slave_pos),
  };
}
