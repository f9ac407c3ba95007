/**
 * The benchmarks' pairs of servers (started by the test harness, filled with data, with their
 * replication.yml), the native procedures that do by hand what dbrepl does, and a writer for
 * each master. Passwords reach replication.yml as ${VAR} and the scripts as environment
 * variables; each is registered with secret() so nothing printed shows it.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import Redis from 'ioredis';
import { caughtUp, keep, Ran, removeKept, secret, Servers, timed, timedShell, writePairFile, WriterConnection } from './bench-common';
import { MariaServer, startMariaDB } from '../test/support/mariadb';
import { PG_BIN, PgCluster, startPostgres } from '../test/support/postgres';
import { RedisServer, startRedis } from '../test/support/redis';
import { sh } from '../test/support/sh';

const newPassword = (): string => secret(randomBytes(12).toString('hex'));

/** A master and its slave, the environment their replication.yml's ${VAR}s take, and that file. */
export interface EnginePair<S> {
  master: S;
  slave: S;
  env: NodeJS.ProcessEnv;
  file: string;
}

// ---------------------------------------------------------------- PostgreSQL

export interface PgPair extends EnginePair<PgCluster> {
  size: string;
}

/** Two clusters (one superuser password: a physical copy carries the master's roles), `pgbench -i -s SCALE` on the master. */
export async function startPgPair(servers: Servers, dir: string, scale: number): Promise<PgPair> {
  const password = newPassword();
  const [master, slave] = await Promise.all([keep(servers, startPostgres({ password })), keep(servers, startPostgres({ password }))]);
  const env = { ...process.env, PGPASSWORD: password, PG_PW: password, REPL_PW: newPassword() };
  await timed('pgbench -i', `${PG_BIN}/pgbench`, ['-h', master.host, '-p', String(master.port), '-U', 'postgres', '-i', '-s', String(scale), '-q', 'postgres'], { env });
  await master.query('CREATE TABLE bench_live (id bigserial PRIMARY KEY, at bigint)');
  const size = (await master.query<{ s: string }>(`SELECT pg_size_pretty(pg_database_size('postgres')) AS s`))[0]!.s;
  const server = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: '${PG_PW}', service: c.service });
  const file = writePairFile(path.join(dir, 'postgresql.yml'), server(master), server(slave), { replication: { user: 'replicator', password: '${REPL_PW}' } });
  return { master, slave, env, file, size };
}

export const PG_BY_HAND =
  'stop the slave, move its data dir aside, pg_basebackup -X stream -R -S <slot> (slot created first), its own config files back, start, wait until pg_stat_wal_receiver says streaming';

/** The rebuild by hand: what an operator's script does, as root, with the native tools. */
export function pgByHand(p: PgPair, round: number): Promise<Ran> {
  const { master, slave } = p;
  const own = ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf'].filter((f) => fs.existsSync(path.join(slave.dataDir, f)));
  const psql = (c: PgCluster, sql: string): string => `runuser -u postgres -- ${PG_BIN}/psql -h ${c.host} -p ${c.port} -U postgres -Atc "${sql}"`;
  const slot = 'dbrepl_app__replica';
  const D = slave.dataDir;
  const aside = `${D}.byhand-${round}`;
  return timedShell(
    'pg by hand',
    `${psql(master, `SELECT pg_create_physical_replication_slot('${slot}') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '${slot}')`)} >/dev/null
${slave.service.stop}
mv -- ${D} ${aside}
mkdir -m 700 -- ${D} && chown postgres: -- ${D}
runuser -u postgres -- env PGPASSWORD="$REPL_PW" ${PG_BIN}/pg_basebackup -h ${master.host} -p ${master.port} -U replicator -D ${D} -X stream -R -S ${slot} -c fast
for f in ${own.join(' ')}; do cp -p -- ${aside}/$f ${D}/$f; done
${slave.service.start}
until [ "$(${psql(slave, 'SELECT status FROM pg_stat_wal_receiver')})" = streaming ]; do sleep 0.02; done`,
    p.env,
  );
}

export const pgWriter = (c: PgCluster) => async (): Promise<WriterConnection> => {
  const client = new Client({ host: c.host, port: c.port, user: 'postgres', password: c.password, database: 'postgres', connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  return { write: () => client.query('INSERT INTO bench_live (at) VALUES ($1)', [Date.now()]), close: () => client.end() };
};

/** After a run (untimed): the kept copies removed, the slave holding every row the writer wrote. */
export async function pgAfter(p: PgPair): Promise<void> {
  removeKept(p.slave.dataDir);
  await caughtUp('bench_live', p, async (c) => (await c.query<{ n: string }>('SELECT count(*) AS n FROM bench_live'))[0]!.n);
}

// ---------------------------------------------------------------- MariaDB

/** `file`: the pair with `copy` left at auto (the physical copy, on one host with service commands). */
export interface MariaPair extends EnginePair<MariaServer> {
  /** The same pair with `copy: logical`. */
  logicalFile: string;
  sizeMb: number;
}

/** Two servers, `shop.big` of ROWS rows of ~250 bytes on the master, and `shop.live` for the writer. */
export async function startMariaPair(servers: Servers, dir: string, rows: number): Promise<MariaPair> {
  const settings = { 'innodb-buffer-pool-size': '512M' };
  const [master, slave] = await Promise.all([keep(servers, startMariaDB({ settings })), keep(servers, startMariaDB({ settings }))]);
  secret(master.password);
  secret(slave.password);
  await master.query('CREATE DATABASE shop');
  await master.query('CREATE TABLE shop.big (id INT PRIMARY KEY, pad VARCHAR(255)) ENGINE=InnoDB');
  await master.query(`INSERT INTO shop.big SELECT seq, REPEAT('x', 230) FROM shop.seq_1_to_${Math.round(rows)}`);
  await master.query('CREATE TABLE shop.live (id INT AUTO_INCREMENT PRIMARY KEY, at BIGINT) ENGINE=InnoDB');
  await master.query('ANALYZE TABLE shop.big');
  const [size] = await master.query<{ mb: number }>(`SELECT ROUND(SUM(data_length + index_length) / 1048576) AS mb FROM information_schema.TABLES WHERE table_schema = 'shop'`);
  const server = (s: MariaServer, v: string) => ({ engine: 'mysql', host: s.host, port: s.port, user: 'admin', password: `\${${v}}`, service: s.service, options_file: s.dbreplOptionsFile });
  const write = (name: string, pair?: object): string =>
    writePairFile(path.join(dir, name), server(master, 'M'), server(slave, 'S'), { replication: { user: 'replicator', password: '${REPL}' }, ...(pair ? { pair } : {}) });
  return {
    master,
    slave,
    env: { ...process.env, M: master.password, S: slave.password, REPL: newPassword() },
    file: write('mysql.yml'),
    logicalFile: write('mysql-logical.yml', { copy: 'logical' }),
    sizeMb: Number(size!.mb),
  };
}

const asRoot = (s: MariaServer): string => `mariadb --no-defaults --socket=${s.socket} --user=root`;

/** The slave pointed at the master (from $GTID where `fromBackup`, else from the position the dump set), started, waited for until both threads run. */
function followScript(m: MariaServer, s: MariaServer, fromBackup: boolean): string {
  const position = fromBackup ? `RESET MASTER; SET GLOBAL gtid_slave_pos = '$GTID'; ` : '';
  return `${asRoot(s)} -e "SET SESSION sql_log_bin = 0; STOP SLAVE; RESET SLAVE ALL; ${position}CHANGE MASTER TO MASTER_HOST = '${m.host}', MASTER_PORT = ${m.port}, MASTER_USER = 'replicator', MASTER_PASSWORD = '$REPL', MASTER_USE_GTID = slave_pos; START SLAVE"
until [ "$(${asRoot(s)} -e 'SHOW SLAVE STATUS\\G' | grep -cE 'Slave_(IO|SQL)_Running: Yes')" = 2 ]; do sleep 0.05; done`;
}

export const MARIA_PHYSICAL_BY_HAND =
  'mariabackup --backup --stream=mbstream | mbstream -x, mariabackup --prepare, chown mysql, stop slave, swap data dirs, start, gtid_slave_pos from xtrabackup_binlog_info, CHANGE MASTER ... MASTER_USE_GTID=slave_pos, START SLAVE, wait until IO/SQL threads run';

/** MariaDB's physical copy by hand (mariabackup takes the master's option file and the admin login on its command line). */
export function mariaPhysicalByHand(p: MariaPair, round: number): Promise<Ran> {
  const { master: m, slave: s } = p;
  const D = s.dataDir;
  const stage = `${D}.byhand-${round}.new`;
  return timedShell(
    'physical copy by hand',
    `tmp=$(mktemp -d); trap 'rm -rf -- "$tmp"' EXIT
mkdir -m 700 -- ${stage}
mariabackup --defaults-file=${m.optionsFile} --user=admin --password="$M" --host=${m.host} --port=${m.port} --backup --stream=mbstream --target-dir="$tmp" 2>"$tmp/backup.log" | mbstream -x -C ${stage} || { tail -n 20 "$tmp/backup.log" >&2; exit 1; }
mariabackup --prepare --target-dir=${stage} 2>"$tmp/prepare.log" || { tail -n 20 "$tmp/prepare.log" >&2; exit 1; }
chown -R mysql:mysql -- ${stage}
${s.service.stop}
mv -T -- ${D} ${D}.byhand-${round}.old
mv -T -- ${stage} ${D}
${s.service.start}
GTID=$(cut -f3 ${D}/xtrabackup_binlog_info)
${followScript(m, s, true)}`,
    p.env,
  );
}

export const MARIA_LOGICAL_BY_HAND =
  'STOP SLAVE, mariadb-dump --single-transaction --gtid --master-data=1 --all-databases --routines --events --triggers --hex-blob --quick | mariadb, CHANGE MASTER ... MASTER_USE_GTID=slave_pos, START SLAVE, wait until IO/SQL threads run';

/** `mariadb-dump | mariadb` alone: the slave must not be replicating (as dbrepl prepares it itself). */
export const dumpLoadScript = (p: MariaPair): string =>
  `MYSQL_PWD="$M" mariadb-dump --no-defaults -h ${p.master.host} -P ${p.master.port} -u admin --single-transaction --gtid --master-data=1 --all-databases --routines --events --triggers --hex-blob --quick | MYSQL_PWD="$S" mariadb --no-defaults -h ${p.slave.host} -P ${p.slave.port} -u admin --binary-mode`;

export const detachScript = (p: MariaPair): string => `${asRoot(p.slave)} -e "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0"`;

/** The logical copy by hand: replication stopped, dump | load, the slave pointed at the master. */
export function mariaLogicalByHand(p: MariaPair): Promise<Ran> {
  return timedShell('logical copy by hand', `${detachScript(p)}\n${dumpLoadScript(p)}\n${followScript(p.master, p.slave, false)}`, p.env);
}

/** A copy by hand leaves the master's accounts on the slave: its own admin login back (untimed). */
export async function restoreSlaveAdmin(p: MariaPair): Promise<void> {
  const sql = `SET SESSION sql_log_bin = 0; FLUSH PRIVILEGES; ALTER USER 'admin'@'%' IDENTIFIED BY '${p.slave.password}'`;
  await sh('mariadb', ['--no-defaults', `--socket=${p.slave.socket}`, '--user=root', '-e', sql]);
}

export const mariaWriter = (s: MariaServer) => async (): Promise<WriterConnection> => {
  const c = await createConnection({ host: s.host, port: s.port, user: 'admin', password: s.password, connectTimeout: 5000 });
  c.on('error', () => undefined);
  return { write: () => c.query('INSERT INTO shop.live (at) VALUES (?)', [Date.now()]), close: () => c.destroy() };
};

/** After a run (untimed): the slave's admin login, the kept copies removed, the slave holding every row the writer wrote. */
export async function mariaAfter(p: MariaPair): Promise<void> {
  await restoreSlaveAdmin(p);
  removeKept(p.slave.dataDir);
  await caughtUp('shop.live', p, async (s) => (await s.query<{ n: number }>('SELECT count(*) AS n FROM shop.live'))[0]!.n);
}

// ---------------------------------------------------------------- Redis

export interface RedisPair extends EnginePair<RedisServer> {
  usedMb: number;
}

/** Two servers, KEYS keys of 250 bytes on the master (DEBUG POPULATE). */
export async function startRedisPair(servers: Servers, dir: string, keys: number): Promise<RedisPair> {
  const [master, slave] = await Promise.all([keep(servers, startRedis()), keep(servers, startRedis())]);
  secret(master.password);
  secret(slave.password);
  await master.call('DEBUG', 'POPULATE', Math.round(keys), 'key', 250);
  const used = Number(/used_memory:(\d+)/.exec(String(await master.call('INFO', 'memory')))![1]);
  // dbrepl refuses a master whose replica output buffer (default hard limit 256 MB) is below its dataset.
  await master.call('CONFIG', 'SET', 'client-output-buffer-limit', `replica ${Math.max(256 * 2 ** 20, 2 * used)} ${Math.max(64 * 2 ** 20, used)} 60`);
  const server = (s: RedisServer, v: string) => ({ engine: 'redis', host: s.host, port: s.port, password: `\${${v}}`, service: s.service });
  return { master, slave, env: { ...process.env, M: master.password, S: slave.password }, file: writePairFile(path.join(dir, 'redis.yml'), server(master, 'M'), server(slave, 'S')), usedMb: used / 2 ** 20 };
}

export const REDIS_BY_HAND = 'REPLICAOF NO ONE (detach), CONFIG SET masterauth, REPLICAOF host port, wait until master_link_status:up and master_sync_in_progress:0';

/** The slave made a replica by hand with redis-cli (detached first, so that it takes a full sync). */
export function redisByHand(p: RedisPair): Promise<Ran> {
  const { master: m, slave: s } = p;
  const cli = `REDISCLI_AUTH="$S" redis-cli --no-auth-warning -h ${s.host} -p ${s.port}`;
  return timedShell(
    'redis by hand',
    `${cli} REPLICAOF NO ONE >/dev/null
${cli} CONFIG SET masterauth "$M" >/dev/null
${cli} REPLICAOF ${m.host} ${m.port} >/dev/null
until info=$(${cli} INFO replication) && [[ $info == *master_link_status:up* && $info == *master_sync_in_progress:0* ]]; do sleep 0.02; done`,
    p.env,
  );
}

export const redisWriter = (s: RedisServer) => async (): Promise<WriterConnection> => {
  // No retries or queue of its own: a failed write shows as one.
  const c = new Redis({ host: s.host, port: s.port, password: s.password, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  return { write: () => c.incr('bench:live'), close: () => c.disconnect() };
};

/** Full syncs the master has served (INFO stats sync_full). */
export async function fullSyncs(s: RedisServer): Promise<number> {
  return Number(/sync_full:(\d+)/.exec(String(await s.call('INFO', 'stats')))![1]);
}

/** After a run (untimed): the slave holding the writer's last count. */
export async function redisAfter(p: RedisPair): Promise<void> {
  await caughtUp('bench:live', p, (s) => s.call('GET', 'bench:live'));
}
