/**
 * The statements generated per flavour and version, checked against the syntax of the
 * reference manuals (no MySQL server can be installed here; MariaDB is exercised live).
 * MySQL 8.0 manual: "CHANGE MASTER TO" (deprecated in 8.0.23 for CHANGE REPLICATION SOURCE TO),
 * "SHOW REPLICA STATUS" (8.0.22), mysqldump --source-data (8.0.26). MySQL 8.4 manual:
 * SHOW BINARY LOG STATUS, RESET BINARY LOGS AND GTIDS; the MASTER/SLAVE statements are gone.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { atLeast, dialectFor, nativePasswordHash, parseVersion } from '../../src/engines/mysql/dialect';
import { readReplicaStatus } from '../../src/engines/mysql/inspect';
import { createHash } from 'node:crypto';

const v = (text: string) => dialectFor(parseVersion(text));
const SRC = { host: 'db-main', port: 3306, user: 'replicator', password: 'pw' };

test('versions: flavour and numbers', () => {
  expect(parseVersion('10.11.19-MariaDB-0+deb12u1-log')).toMatchObject({ flavour: 'mariadb', major: 10, minor: 11, patch: 19 });
  expect(parseVersion('8.4.3')).toMatchObject({ flavour: 'mysql', major: 8, minor: 4, patch: 3 });
  expect(parseVersion('8.0.36-0ubuntu0.22.04.1')).toMatchObject({ flavour: 'mysql', major: 8, minor: 0, patch: 36 });
  expect(atLeast(parseVersion('8.0.22'), 8, 0, 22)).toBe(true);
  expect(atLeast(parseVersion('8.0.21'), 8, 0, 22)).toBe(false);
  expect(() => v('5.7.44')).toThrow(/not supported; the oldest supported is MySQL 8\.0/);
  expect(() => v('10.4.30-MariaDB')).toThrow(/oldest supported is MariaDB 10\.5/);
});

test('MariaDB 10.11: MASTER/SLAVE statements, MASTER_USE_GTID=slave_pos, MASTER_GTID_WAIT, option file', () => {
  const d = v('10.11.19-MariaDB');
  expect(d.replicaStatus).toBe('SHOW SLAVE STATUS');
  expect(d.binlogStatus).toBe('SHOW MASTER STATUS');
  expect([d.startReplica, d.stopReplica, d.resetReplicaAll, d.resetBinlogs]).toEqual(['START SLAVE', 'STOP SLAVE', 'RESET SLAVE ALL', 'RESET MASTER']);
  expect(d.changeSource(SRC)).toEqual({
    sql: 'CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 5',
    values: ['db-main', 3306, 'replicator', 'pw'],
  });
  expect(d.executedGtids).toBe('@@GLOBAL.gtid_binlog_pos');
  expect(d.waitForGtids).toBe('SELECT MASTER_GTID_WAIT(?, ?) AS r');
  expect(d.readOnly(true)).toEqual(['SET GLOBAL read_only = 1']);
  expect(d.needsOptionsFile).toBe(true);
  expect(d.superReadOnly).toBeNull();
  expect(d.dumpProgram).toBe('mariadb-dump');
  expect(d.dumpArgs).toEqual(expect.arrayContaining(['--single-transaction', '--all-databases', '--gtid', '--master-data=1']));
  expect(d.replicationUser('replicator', '10.0.1.6', '*HASH')[0]).toEqual({ sql: 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY PASSWORD ?', values: ['replicator', '10.0.1.6', '*HASH'] });
});

test('MySQL 8.0.21: the MASTER/SLAVE spellings and MASTER_AUTO_POSITION', () => {
  const d = v('8.0.21');
  expect([d.replicaStatus, d.startReplica, d.stopReplica, d.resetReplicaAll]).toEqual(['SHOW SLAVE STATUS', 'START SLAVE', 'STOP SLAVE', 'RESET SLAVE ALL']);
  expect(d.changeSource(SRC).sql).toBe(
    'CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_AUTO_POSITION = 1, GET_MASTER_PUBLIC_KEY = 1, MASTER_CONNECT_RETRY = 5',
  );
  expect(d.dumpArgs).toEqual(expect.arrayContaining(['--master-data=1', '--set-gtid-purged=ON']));
  expect(d.executedGtids).toBe('@@GLOBAL.gtid_executed');
  expect(d.waitForGtids).toBe('SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r');
  // super_read_only would block the copy (DROP DATABASE, the import) even for SUPER: set after it.
  expect(d.readOnly(true)).toEqual(['SET PERSIST read_only = ON']);
  expect(d.superReadOnly).toBe('SET PERSIST super_read_only = ON');
  expect(d.disableEventOnReplica).toBe('DISABLE ON SLAVE');
  // super_read_only must be lifted before read_only.
  expect(d.readOnly(false)).toEqual(['SET PERSIST super_read_only = OFF', 'SET PERSIST read_only = OFF']);
  expect(d.needsOptionsFile).toBe(false);
  expect(d.setServerId).toBe('SET PERSIST server_id = ?');
});

test('MySQL 8.0.22 has the REPLICA statements; 8.0.23 CHANGE REPLICATION SOURCE TO; 8.0.26 --source-data', () => {
  expect(v('8.0.22').replicaStatus).toBe('SHOW REPLICA STATUS');
  expect(v('8.0.22').changeSource(SRC).sql).toMatch(/^CHANGE MASTER TO /);
  expect(v('8.0.23').changeSource(SRC).sql).toBe(
    'CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_USER = ?, SOURCE_PASSWORD = ?, SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1, SOURCE_CONNECT_RETRY = 5',
  );
  expect(v('8.0.25').dumpArgs).toContain('--master-data=1');
  expect(v('8.0.26').dumpArgs).toContain('--source-data=1');
  expect(v('8.0.36').binlogStatus).toBe('SHOW MASTER STATUS');
});

test('MySQL 8.4: no statement uses the removed MASTER/SLAVE words', () => {
  const d = v('8.4.3');
  expect([d.replicaStatus, d.binlogStatus, d.startReplica, d.stopReplica, d.resetReplicaAll, d.resetBinlogs]).toEqual([
    'SHOW REPLICA STATUS', 'SHOW BINARY LOG STATUS', 'START REPLICA', 'STOP REPLICA', 'RESET REPLICA ALL', 'RESET BINARY LOGS AND GTIDS',
  ]);
  expect(d.disableEventOnReplica).toBe('DISABLE ON REPLICA');
  const statements = [d.disableEventOnReplica, d.replicaStatus, d.binlogStatus, d.startReplica, d.stopReplica, d.resetReplicaAll, d.resetBinlogs, d.changeSource(SRC).sql, d.executedGtids, d.waitForGtids, ...d.readOnly(true), ...d.readOnly(false), d.setServerId, ...d.dumpArgs];
  for (const s of statements) expect(s).not.toMatch(/MASTER|SLAVE|master-data/i);
  // The privilege keeps its name in 8.4.
  expect(d.replicationUser('r', 'h', 'pw').map((s) => s.sql)).toContain('GRANT REPLICATION SLAVE ON *.* TO ?@?');
});

test('mysql_native_password hash as MariaDB stores it', () => {
  const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();
  expect(nativePasswordHash('secret')).toBe(`*${sha1(sha1(Buffer.from('secret'))).toString('hex').toUpperCase()}`);
  // PASSWORD('password') on MariaDB/MySQL 5.x:
  expect(nativePasswordHash('password')).toBe('*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19');
});

test('replica status is read by column name in either spelling; a NULL lag stays NULL', () => {
  const mariadb = { Master_Host: 'db-main', Master_Port: 3306, Master_User: 'r', Slave_IO_Running: 'Yes', Slave_SQL_Running: 'No', Seconds_Behind_Master: null, Last_IO_Errno: 0, Last_IO_Error: '', Last_SQL_Errno: 1062, Last_SQL_Error: "Duplicate entry '1'", Relay_Master_Log_File: 'mysql-bin.000002', Exec_Master_Log_Pos: 120, Using_Gtid: 'Slave_Pos', Gtid_IO_Pos: '0-1-5' } as unknown as RowDataPacket;
  const mysql84 = { Source_Host: 'db-main', Source_Port: 3306, Source_User: 'r', Replica_IO_Running: 'Yes', Replica_SQL_Running: 'No', Seconds_Behind_Source: null, Last_IO_Errno: 0, Last_IO_Error: '', Last_SQL_Errno: 1062, Last_SQL_Error: "Duplicate entry '1'", Relay_Source_Log_File: 'mysql-bin.000002', Exec_Source_Log_Pos: 120, Auto_Position: 1, Executed_Gtid_Set: 'uuid:1-5' } as unknown as RowDataPacket;
  const a = readReplicaStatus(mariadb)!;
  const b = readReplicaStatus(mysql84)!;
  for (const r of [a, b]) {
    expect(r).toMatchObject({ sourceHost: 'db-main', sourcePort: 3306, ioRunning: 'Yes', sqlRunning: 'No', secondsBehind: null, lastSqlErrno: 1062, execSourceLogFile: 'mysql-bin.000002', execSourceLogPos: 120 });
  }
  expect(readReplicaStatus({ Master_Host: '' } as unknown as RowDataPacket)).toBeNull();
  expect(readReplicaStatus(undefined)).toBeNull();
});
