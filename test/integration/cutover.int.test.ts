/**
 * Guarded cutover on live servers: fence: true makes the master read-only before the slave
 * is promoted (PostgreSQL: its sessions ended, new ones read-only; MariaDB: read_only, also
 * after a restart) and checks one writer is left; a disable whose master cannot be reached
 * is refused, saying what could be lost, unless --force; Redis refuses fence.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { Client } from 'pg';
import { MariaServer, startMariaDB } from '../support/mariadb';
import { PgCluster, startPostgres } from '../support/postgres';
import { RedisServer, startRedis } from '../support/redis';
import { dbrepl, scratch, writeYaml } from '../support/dbrepl';
import { mariaServer, pgServer, redisServer } from '../support/servers-yaml';
import { eventually } from '../support/sh';

const REPL = `repl-${randomBytes(8).toString('hex')}`;
const { pool, dir } = scratch('dbrepl-cutover-', [REPL]);

function pairFile(name: string, master: Record<string, unknown>, slave: Record<string, unknown>, pair: Record<string, unknown> = {}): string {
  return writeYaml(
    dir(),
    {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: { old: { servers: { db: master } }, new: { servers: { db: slave } } },
      // The cutover is the point here, not the copy: MariaDB pairs take the quick dump of their small data.
      replications: [{ master: 'old/db', slave: 'new/db', ...(master.engine === 'mysql' ? { copy: 'logical' } : {}), ...pair }],
    },
    `${name}.yml`,
  );
}

const inRecovery = async (c: PgCluster): Promise<boolean> => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r;

describe('PostgreSQL', () => {
  let master: PgCluster;
  let slave: PgCluster;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    const password = `pg-${randomBytes(8).toString('hex')}`;
    [master, slave] = await Promise.all([pool.add(startPostgres({ password })), pool.add(startPostgres({ password }))]);
    env = { ...process.env, PG_PW: password, REPL_PW: REPL };
    await master.query('CREATE TABLE orders (id serial PRIMARY KEY, v text)');
    await master.query(`INSERT INTO orders (v) VALUES ('before the cutover')`);
  });

  test('fence: the master read-only (its writers ended) before the promotion, one writer checked after', async () => {
    const enabled = pairFile('pg-on', pgServer(master, 'PG_PW'), pgServer(slave, 'PG_PW'));
    expect((await dbrepl(['apply', '--json', '-c', enabled], env)).json().pairs[0].result).toBe('done');
    // An application's session on the old master, writing until the cutover.
    const app = new Client({ host: master.host, port: master.port, user: 'postgres', password: master.password, database: 'postgres', application_name: 'old-app' });
    app.on('error', () => undefined);
    await app.connect();
    await app.query(`INSERT INTO orders (v) VALUES ('written by the old app')`);
    const fenced = pairFile('pg-fence', pgServer(master, 'PG_PW'), pgServer(slave, 'PG_PW'), { state: 'disabled', fence: true });
    const plan = (await dbrepl(['plan', '--json', '-c', fenced], env)).json().pairs[0];
    expect(plan.steps[0]).toMatch(/^master: ALTER SYSTEM SET default_transaction_read_only = on; pg_reload_conf\(\); end its client sessions/);
    expect(plan.steps.join('\n')).toContain('check that new/db takes writes and old/db does not');
    expect(plan.disruption).toContain('master becomes read-only');
    const r = await dbrepl(['apply', '--json', '-c', fenced], env);
    expect(r.code).toBe(0);
    expect(r.json().pairs[0].result).toBe('done');
    // The old app's session was ended; a new one cannot write.
    await expect(app.query('SELECT 1')).rejects.toThrow();
    await expect(master.query(`INSERT INTO orders (v) VALUES ('after')`)).rejects.toThrow(/read-only transaction/);
    // The new master has everything, and takes writes.
    expect(await inRecovery(slave)).toBe(false);
    expect((await slave.query<{ v: string }>('SELECT v FROM orders ORDER BY id')).map((x) => x.v)).toEqual(['before the cutover', 'written by the old app']);
    await slave.query(`INSERT INTO orders (v) VALUES ('written on the new master')`);
    await app.end().catch(() => undefined);
  });

  test('a fenced disable that fails before the promotion makes the master writable again', async () => {
    const password = `pg-${randomBytes(8).toString('hex')}`;
    const [m, s] = await Promise.all([pool.add(startPostgres({ password })), pool.add(startPostgres({ password }))]);
    const e = { ...process.env, PG_PW: password, REPL_PW: REPL };
    await m.query('CREATE TABLE t (v text)');
    expect((await dbrepl(['apply', '--json', '-c', pairFile('pg-undo-on', pgServer(m, 'PG_PW'), pgServer(s, 'PG_PW'))], e)).json().pairs[0].result).toBe('done');
    // The slave replays nothing: the catch-up after the fence cannot finish.
    await s.query('SELECT pg_wal_replay_pause()');
    const off = pairFile('pg-undo-off', pgServer(m, 'PG_PW'), pgServer(s, 'PG_PW'), { state: 'disabled', fence: true, catchup_timeout: '2s' });
    const r = await dbrepl(['apply', '--json', '-c', off], e);
    expect(r.code).toBe(1);
    expect(r.json().pairs[0].error).toMatch(/nothing was changed.*old\/db is writable again/s);
    await m.query(`INSERT INTO t VALUES ('the master takes writes again')`);
    expect((await m.query<{ ro: string }>("SELECT current_setting('default_transaction_read_only') AS ro"))[0]!.ro).toBe('off');
    expect(await inRecovery(s)).toBe(true);
    await s.query('SELECT pg_wal_replay_resume()');
  });
});

describe('MariaDB', () => {
  let master: MariaServer;
  let slave: MariaServer;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    [master, slave] = await Promise.all([pool.add(startMariaDB()), pool.add(startMariaDB())]);
    env = { ...process.env, M_PW: master.password, S_PW: slave.password, REPL_PW: REPL };
    await master.query('CREATE DATABASE shop');
    await master.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB');
    await master.query(`INSERT INTO shop.orders VALUES (1, 'before')`);
  });

  test('fence: read_only on the master, in memory and in its option file (still after a restart); one writer', async () => {
    const on = pairFile('my-on', mariaServer(master, 'M_PW'), mariaServer(slave, 'S_PW'));
    expect((await dbrepl(['apply', '--json', '-c', on], env)).json().pairs[0].result).toBe('done');
    await master.query(`INSERT INTO shop.orders VALUES (2, 'just before')`);
    const fenced = pairFile('my-fence', mariaServer(master, 'M_PW'), mariaServer(slave, 'S_PW'), { state: 'disabled' });
    const r = await dbrepl(['apply', '--json', '--fence', '-c', fenced], env);
    expect(r.code).toBe(0);
    expect(r.json().pairs[0].steps.join('\n')).toMatch(/master: SET GLOBAL read_only = 1 \(waiting at most 10s for running writes\); read_only = 1 persisted in .*90-dbrepl\.cnf/);
    expect(Number((await master.query<any>('SELECT @@global.read_only AS ro'))[0].ro)).toBe(1);
    await master.stop();
    await master.start();
    expect(Number((await master.query<any>('SELECT @@global.read_only AS ro'))[0].ro)).toBe(1);
    expect((await slave.query<any>('SELECT COUNT(*) AS n FROM shop.orders'))[0].n).toBe(2);
    await slave.query(`INSERT INTO shop.orders VALUES (3, 'on the new master')`);
  });

  test('a fenced disable that fails before the detach makes the master writable again, its option file as it was', async () => {
    const [m, s] = await Promise.all([pool.add(startMariaDB()), pool.add(startMariaDB())]);
    const e = { ...process.env, M_PW: m.password, S_PW: s.password, REPL_PW: REPL };
    await m.query('CREATE DATABASE app');
    await m.query('CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB');
    expect((await dbrepl(['apply', '--json', '-c', pairFile('my-undo-on', mariaServer(m, 'M_PW'), mariaServer(s, 'S_PW'))], e)).json().pairs[0].result).toBe('done');
    const options = (): string | null => (fs.existsSync(m.dbreplOptionsFile) ? fs.readFileSync(m.dbreplOptionsFile, 'utf8') : null);
    const optionsBefore = options();
    // The slave executes nothing more: the GTIDs noted after the fence cannot be reached.
    await s.query('STOP SLAVE SQL_THREAD');
    await m.query('INSERT INTO app.t VALUES (1)');
    const off = pairFile('my-undo-off', mariaServer(m, 'M_PW'), mariaServer(s, 'S_PW'), { state: 'disabled', fence: true, catchup_timeout: '2s' });
    const r = await dbrepl(['apply', '--json', '-c', off], e);
    expect(r.code).toBe(1);
    expect(r.json().pairs[0].error).toMatch(/nothing was changed.*old\/db is writable again/s);
    expect(Number((await m.query<any>('SELECT @@global.read_only AS ro'))[0].ro)).toBe(0);
    expect(options()).toBe(optionsBefore);
    await m.query('INSERT INTO app.t VALUES (2)');
    await s.query('START SLAVE SQL_THREAD');
  });
});

describe('a master that cannot be reached', () => {
  test('the disable is refused, saying what could be lost; --force promotes the slave as it is', async () => {
    const password = `pg-${randomBytes(8).toString('hex')}`;
    const [master, slave] = await Promise.all([pool.add(startPostgres({ password })), pool.add(startPostgres({ password }))]);
    const env = { ...process.env, PG_PW: password, REPL_PW: REPL };
    await master.query('CREATE TABLE t AS SELECT 1 AS x');
    const on = pairFile('gone-on', pgServer(master, 'PG_PW'), pgServer(slave, 'PG_PW'));
    expect((await dbrepl(['apply', '--json', '-c', on], env)).json().pairs[0].result).toBe('done');
    await eventually(async () => ((await slave.query('SELECT * FROM t')).length === 1 ? true : undefined), 20_000, 'the row on the slave');
    await master.stop();
    const off = pairFile('gone-off', pgServer(master, 'PG_PW'), pgServer(slave, 'PG_PW'), { state: 'disabled' });
    const plan = await dbrepl(['plan', '--json', '-c', off], env);
    expect(plan.code).toBe(1);
    expect(plan.json().pairs[0].error).toMatch(/old\/db cannot be reached \(.*\): the disable cannot wait for new\/db to catch up; promoting new\/db now loses what old\/db took that new\/db has not received .*\(--force goes ahead anyway\)/);
    const refused = await dbrepl(['apply', '--json', '-c', off], env);
    expect(refused.code).toBe(1);
    expect(await inRecovery(slave)).toBe(true);
    // A fenced pair: nothing can fence a master out of reach, so not even --force goes ahead.
    const unfenceable = await dbrepl(['apply', '--json', '--force', '--fence', '-c', off], env);
    expect(unfenceable.code).toBe(1);
    expect(unfenceable.json().pairs[0].error).toMatch(/old\/db cannot be reached \(.*\), so it cannot be fenced .*take fence off the pair \(or drop --fence\) and apply --force/);
    expect(await inRecovery(slave)).toBe(true);
    const forced = await dbrepl(['apply', '--json', '--force', '-c', off], env);
    expect(forced.code).toBe(0);
    expect(forced.json().pairs[0].result).toBe('done');
    expect(forced.json().pairs[0].warnings.join('\n')).toMatch(/forced \(--force\): old\/db cannot be reached.*keeps its replication slot/s);
    expect(await inRecovery(slave)).toBe(false);
    expect((await slave.query('SELECT * FROM t')).length).toBe(1);
  });
});

test('Redis refuses fence, naming why', async () => {
  const [m, s] = await Promise.all([pool.add(startRedis()), pool.add(startRedis())]);
  const env = { ...process.env, M_PW: m.password, S_PW: s.password, REPL_PW: REPL };
  const file = pairFile('redis-fence', redisServer(m as RedisServer, 'M_PW'), redisServer(s as RedisServer, 'S_PW'), {});
  const on = await dbrepl(['apply', '--json', '-c', file], env);
  expect(on.stdout).toContain('"result": "done"');
  const fenced = pairFile('redis-fence-off', redisServer(m, 'M_PW'), redisServer(s, 'S_PW'), { state: 'disabled', fence: true });
  const plan = await dbrepl(['plan', '--json', '-c', fenced], env);
  expect(plan.code).toBe(1);
  expect(plan.json().pairs[0].error).toContain('fence is not available for Redis');
  expect((await s.info()).role).toBe('slave');
});
