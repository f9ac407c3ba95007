/**
 * MySQL/MariaDB: a slave of the declared master that does not replicate. IO connection
 * errors (the master restarting, unreachable, refusing) are `reconnecting` until
 * resync_after; SQL thread errors, 1236 and other IO errors are `broken` at once. How long the
 * link has been down: nothing missed counts as 0 s; MySQL 8 from performance_schema (a lower
 * bound); MariaDB 10.11 from the age of the last event applied (an upper bound).
 */
import { copyChoice } from '../../src/engines/mysql/physical';
import type { Inspection } from '../../src/engines/engine';
import { gtidsCover, parseVersion } from '../../src/engines/mysql/dialect';
import type { CopyHost, LinkTiming, MyFacts, ReplicaStatus } from '../../src/engines/mysql/inspect';
import { CONNECTION_ERRORS, outageOf, pairState } from '../../src/engines/mysql/state';
import type { Server } from '../../src/model';
import { pair, server } from './helpers/build';

const M = server('billing/db', { engine: 'mysql', host: '10.0.2.5', port: 3306 });
const S = server('reports/db', { engine: 'mysql', host: '10.0.3.6', port: 3306 });
const P = pair(M, S, { resyncAfterSeconds: 120 });
const MARIADB = parseVersion('10.11.19-MariaDB-0+deb12u1');
const MYSQL = parseVersion('8.4.3');

function replica(over: Partial<ReplicaStatus> = {}): ReplicaStatus {
  return {
    sourceHost: '10.0.2.5', sourcePort: 3306, sourceUser: 'repl', ioRunning: 'Yes', sqlRunning: 'Yes', secondsBehind: 0,
    lastIoErrno: 0, lastIoError: '', lastSqlErrno: 0, lastSqlError: '', execSourceLogFile: 'mysql-bin.000001', execSourceLogPos: 900,
    usingGtid: 'Slave_Pos', gtidPosition: '0-1-7', retrievedGtids: '', ...over,
  };
}
function facts(over: Partial<MyFacts> = {}): MyFacts {
  return {
    version: MARIADB, serverId: 1, logBin: true, gtidMode: null, readOnly: false, superReadOnly: null, datadir: '/var/lib/mysql', pidFile: '/run/mysqld/mysqld.pid',
    executedGtids: '0-1-7', binlogFile: 'mysql-bin.000001', binlogPos: 900, replica: null, dumpClients: [], currentUser: 'root@localhost', hostname: 'db',
    port: 3306, serverUuid: null, gtidSlavePos: null, linkTiming: null, userSchemas: 1, ...over,
  };
}
const timing = (over: Partial<LinkTiming> = {}): LinkTiming => ({ contactAgeSeconds: null, heartbeatPeriodSeconds: null, sqlThreadEventAgeSeconds: null, ...over });
const slave = (r: Partial<ReplicaStatus> = {}, over: Partial<MyFacts> = {}): MyFacts => facts({ serverId: 2, readOnly: true, replica: replica(r), linkTiming: timing(), ...over });
const ok = (s: Server, f: MyFacts): Inspection<MyFacts> => ({ ok: true, server: s, facts: f });
const down = (s: Server, error: string): Inspection<MyFacts> => ({ ok: false, server: s, error });
const REFUSED = `error reconnecting to master 'repl@10.0.2.5:3306' - retry-time: 5  maximum-retries: 100000  message: Can't connect to server on '10.0.2.5' (111 "Connection refused")`;
const cutOff = (over: Partial<MyFacts> = {}, r: Partial<ReplicaStatus> = {}): MyFacts =>
  slave({ ioRunning: 'Connecting', secondsBehind: null, lastIoErrno: 2003, lastIoError: REFUSED, ...r }, { linkTiming: timing({ sqlThreadEventAgeSeconds: 20 }), ...over });

describe('the IO thread cannot reach the master: reconnecting until resync_after', () => {
  test('the master stopped (cannot be inspected): reconnecting, for at most the age of the last event applied (MariaDB)', () => {
    const r = pairState(P, down(M, 'connect ECONNREFUSED 10.0.2.5:3306'), ok(S, cutOff()));
    expect(r).toMatchObject({ state: 'reconnecting', lagSeconds: null, lagBytes: null });
    expect(r.error).toBe(
      `link to the master down for at most 20s (since the master's last event the slave applied): IO thread reconnecting after error 2003: ${REFUSED}; billing/db unreachable: connect ECONNREFUSED 10.0.2.5:3306; broken after resync_after 2m`,
    );
  });

  test('... broken once longer than resync_after', () => {
    const r = pairState(P, down(M, 'x'), ok(S, cutOff({ linkTiming: timing({ sqlThreadEventAgeSeconds: 121 }) })));
    expect(r.state).toBe('broken');
    expect(r.error).toMatch(/^link to the master down for at most 2m1s \(.*\), longer than resync_after 2m: IO thread reconnecting after error 2003/);
  });

  test.each([2002, 2003, 2005, 2006, 2013, 2055, 1040, 1053, 1159, 1927])('IO error %p while Connecting is a connection problem', (errno) => {
    expect(CONNECTION_ERRORS.has(errno)).toBe(true);
    expect(pairState(P, ok(M, facts({ executedGtids: '0-1-9' })), ok(S, cutOff({}, { lastIoErrno: errno, lastIoError: 'x' }))).state).toBe('reconnecting');
  });

  test('connecting before any error (the first attempt under way)', () => {
    const r = pairState(P, ok(M, facts({ executedGtids: '0-1-9' })), ok(S, cutOff({}, { lastIoErrno: 0, lastIoError: '' })));
    expect(r.state).toBe('reconnecting');
    expect(r.error).toContain('IO thread connecting to the master');
  });

  test('the master answers and the slave has received every GTID it has: counted as 0 s, however long', () => {
    const r = pairState(P, ok(M, facts({ executedGtids: '0-1-7' })), ok(S, cutOff({ linkTiming: timing({ sqlThreadEventAgeSeconds: 99999 }) })));
    expect(r.state).toBe('reconnecting');
    expect(r.error).toMatch(/^link to the master down \(counted as 0s: the slave has received every GTID the master has\): IO thread reconnecting after error 2003/);
  });

  test('MySQL 8: performance_schema gives a lower bound (last contact less one heartbeat period)', () => {
    const my = (contact: number) =>
      cutOff({ version: MYSQL, linkTiming: timing({ contactAgeSeconds: contact, heartbeatPeriodSeconds: 30 }) }, { gtidPosition: '', retrievedGtids: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5' });
    expect(outageOf(my(100), null)).toEqual({ seconds: 70, basis: 'at-least', note: 'last heard from the master 100s ago; it sends a heartbeat every 30s when quiet' });
    expect(pairState(P, down(M, 'x'), ok(S, my(140))).state).toBe('reconnecting');
    const r = pairState(P, down(M, 'x'), ok(S, my(151)));
    expect(r.state).toBe('broken');
    expect(r.error).toMatch(/^link to the master down for at least 2m1s \(last heard from the master 151s ago; .*\), longer than resync_after 2m/);
  });

  test('nothing known: reconnecting for an unknown time', () => {
    const r = pairState(P, down(M, 'x'), ok(S, cutOff({ linkTiming: timing() })));
    expect(r.state).toBe('reconnecting');
    expect(r.error).toMatch(/down for an unknown time \(the server records no time of its last contact with the master\)/);
  });
});

describe('broken at once', () => {
  const brokenBecause = (s: MyFacts, m: Inspection<MyFacts> = ok(M, facts())): string => {
    const r = pairState({ ...P, resyncAfterSeconds: 86400 }, m, ok(S, s));
    expect(r.state).toBe('broken');
    return r.error!;
  };

  test('the SQL thread stopped on 1062 / 1032 (the data differ), even with the master down', () => {
    expect(brokenBecause(slave({ sqlRunning: 'No', lastSqlErrno: 1062, lastSqlError: "Duplicate entry '1000' for key 'PRIMARY'" }))).toBe(
      "SQL thread stopped on error 1062: Duplicate entry '1000' for key 'PRIMARY'",
    );
    expect(brokenBecause(slave({ sqlRunning: 'No', lastSqlErrno: 1032, lastSqlError: "Can't find record in 'orders'" }), down(M, 'x'))).toMatch(/^SQL thread stopped on error 1032/);
  });

  test('1236 (MySQL 8: 13114): binlogs purged, or the slave has GTIDs the master lacks', () => {
    const purged = "Got fatal error 1236 from master when reading data from binary log: 'Could not find GTID state requested by slave in any binlog files. Probably the slave state is too old and required binlog files have been purged.'";
    expect(brokenBecause(slave({ ioRunning: 'No', lastIoErrno: 1236, lastIoError: purged }))).toMatch(/^IO thread stopped on error 1236: the master cannot serve the slave's position \(binary logs purged, or the slave has transactions the master lacks\): Got fatal error 1236/);
    const more = "Got fatal error 1236 from source when reading data from binary log: 'Slave has more GTIDs than the master has, using the master's SERVER_UUID.'";
    expect(brokenBecause(slave({ ioRunning: 'No', lastIoErrno: 13114, lastIoError: more }, { version: MYSQL }))).toMatch(/error 13114: .*more GTIDs than the master/);
  });

  test('another IO error (a refused login): not a blip', () => {
    expect(brokenBecause(slave({ ioRunning: 'Connecting', lastIoErrno: 1045, lastIoError: "Access denied for user 'repl'@'10.0.3.6'" }))).toMatch(/^IO thread error 1045: Access denied/);
  });

  test('threads stopped by hand, or an IO thread that gave up retrying', () => {
    expect(brokenBecause(slave({ ioRunning: 'No', sqlRunning: 'No', secondsBehind: null }))).toMatch(/the SQL thread is stopped \(no error; STOP SLAVE\?\)/);
    expect(brokenBecause(slave({ ioRunning: 'No', secondsBehind: null, lastIoErrno: 2003, lastIoError: REFUSED }))).toMatch(/the IO thread is stopped and does not reconnect by itself \(last error 2003/);
  });
});

test('replicating and lagging are unchanged', () => {
  expect(pairState(P, ok(M, facts()), ok(S, slave())).state).toBe('replicating');
  expect(pairState({ ...P, maxLagSeconds: 10 }, ok(M, facts()), ok(S, slave({ secondsBehind: 11 }))).state).toBe('lagging');
  // A slave that follows another server while the master is down: unreachable, as before.
  expect(pairState(P, down(M, 'x'), ok(S, cutOff({}, { sourceHost: '10.0.9.9' }))).state).toBe('unreachable');
});

describe('gtidsCover', () => {
  test('MariaDB: per domain, the sequence number', () => {
    expect(gtidsCover('mariadb', '0-1-7', '0-1-7')).toBe(true);
    expect(gtidsCover('mariadb', '0-1-7,1-2-5', '0-1-6')).toBe(true);
    expect(gtidsCover('mariadb', '0-1-7', '0-1-8')).toBe(false);
    expect(gtidsCover('mariadb', '0-1-7', '0-1-7,1-3-1')).toBe(false);
    expect(gtidsCover('mariadb', '0-1-7', '')).toBe(true);
    expect(gtidsCover('mariadb', 'garbage', '0-1-1')).toBeNull();
  });

  test('MySQL: GTID sets, intervals merged across the set', () => {
    const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const B = '4c0e0c5d-8a2f-11e1-9e33-c80aa9429562';
    expect(gtidsCover('mysql', `${A}:1-5`, `${A}:1-5`)).toBe(true);
    expect(gtidsCover('mysql', `${A}:1-3:4-9,${B}:1`, `${A}:2-8,${B}:1`)).toBe(true);
    expect(gtidsCover('mysql', `${A}:1-3:5-9`, `${A}:1-9`)).toBe(false);
    expect(gtidsCover('mysql', `${A.toUpperCase()}:1-5`, `${A}:5`)).toBe(true);
    expect(gtidsCover('mysql', `${A}:1-5`, `${B}:1`)).toBe(false);
    expect(gtidsCover('mysql', `${A}:1-5,\n${B}:1-2`, `${B}:2`)).toBe(true);
    expect(gtidsCover('mysql', `${A}:tag:1-5`, `${A}:1`)).toBeNull();
  });
});

describe('copyChoice: physical (mariabackup) where both hosts can, else the dump, saying why', () => {
  const host = (over: Partial<CopyHost> = {}): CopyHost => ({ error: null, label: 'db-host', bootId: 'b1', netns: 'n1', mariabackup: '10.11', mbstream: true, openssl: true, datadirMountPoint: false, outside: [], ...over });
  const withService = pair(M, { ...S, service: { stop: 'systemctl stop mariadb@replica', start: 'systemctl start mariadb@replica' } });
  const why = (p: typeof P, m: Partial<MyFacts>, s: Partial<MyFacts>): string => {
    const c = copyChoice(p, facts({ copyHost: host(), ...m }), facts({ copyHost: host(), ...s }));
    return c.method === 'physical' ? 'physical' : c.why;
  };
  test('one host, one version, the programs, service commands: physical', () => {
    expect(why(withService, {}, {})).toBe('physical');
  });
  test('each reason to fall back is named', () => {
    expect(why({ ...withService, copy: 'logical' }, {}, {})).toMatch(/copy: logical/);
    expect(why(withService, { version: MYSQL }, { version: MYSQL })).toMatch(/MySQL servers are copied by a dump/);
    expect(why(withService, {}, { version: parseVersion('10.6.12-MariaDB') })).toMatch(/MariaDB 10.11 and the slave 10.6/);
    expect(why(withService, { copyHost: undefined }, {})).toMatch(/not asked/);
    expect(why(withService, { copyHost: host({ error: 'host commands for billing/db would run on the runner' }) }, {})).toMatch(/cannot work on billing\/db's machine/);
    expect(why(withService, { copyHost: host({ mariabackup: null }) }, {})).toMatch(/has no mariabackup; the master runs 10.11/);
    expect(why(withService, { copyHost: host({ mariabackup: '10.6' }) }, {})).toMatch(/has mariabackup 10.6/);
    expect(why(withService, {}, { copyHost: host({ mbstream: false }) })).toMatch(/lacks mbstream and mariabackup 10.11/);
    expect(why(withService, {}, { copyHost: host({ datadirMountPoint: true }) })).toMatch(/is a mount point/);
    expect(why(withService, {}, { copyHost: host({ outside: ['log_bin_basename = /var/log/mysql/mariadb-bin'] }) })).toMatch(/keeps files outside its data directory \(log_bin_basename = \/var\/log\/mysql\/mariadb-bin\)/);
    expect(why(withService, {}, { copyHost: host({ label: 'ssh deploy@db2:22', bootId: 'b2' }) })).toBe('physical');
    expect(why(withService, {}, { copyHost: host({ label: 'ssh deploy@db2:22', bootId: 'b2', openssl: false }) })).toMatch(/on different hosts and ssh deploy@db2:22 has no openssl/);
    expect(why(withService, { copyHost: host({ netns: 'n2', openssl: false }) }, {})).toMatch(/on different hosts and db-host has no openssl/);
    expect(why(P, {}, {})).toMatch(/has no service commands/);
  });
});
