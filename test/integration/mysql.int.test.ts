/**
 * MySQL engine against live MariaDB servers started by test/support/mariadb.ts:
 * enable within and across applications, restart, a duplicate-key break healed by apply,
 * a writer on the master during enable, disable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { MariaServer, startMariaDB } from '../support/mariadb';
import { dbrepl, SECRETS, tempDir, writeYaml } from '../support/dbrepl';
import { eventually, sh } from '../support/sh';

const REPL_PASSWORD = `repl-${randomBytes(10).toString('hex')}`;
let master: MariaServer;
let replica: MariaServer;
let dr: MariaServer;
let dir: string;
let env: NodeJS.ProcessEnv;

function server(s: MariaServer, passwordVar: string): Record<string, unknown> {
  return { engine: 'mysql', host: s.host, port: s.port, user: 'admin', password: `\${${passwordVar}}`, service: s.service, options_file: s.dbreplOptionsFile };
}

function config(drState: 'enabled' | 'disabled' = 'enabled'): void {
  writeYaml(dir, {
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPLICATION_PASSWORD}' } },
    applications: {
      shop: { servers: { 'mysql-main': server(master, 'MASTER_PW'), 'mysql-replica': server(replica, 'REPLICA_PW') } },
      'shop-dr': { servers: { mysql: server(dr, 'DR_PW') } },
    },
    replications: [
      { master: 'shop/mysql-main', slave: 'shop/mysql-replica' },
      // One pair each way: the replica gets mariabackup's physical copy (one host, service commands), the DR slave a logical dump.
      { master: 'shop/mysql-main', slave: 'shop-dr/mysql', state: drState, catchup_timeout: '60s', copy: 'logical' },
    ],
  });
}

const run = (...args: string[]) => dbrepl([...args, '-c', path.join(dir, 'replication.yml')], env);
const one = async (s: MariaServer, q: string): Promise<any> => (await s.query(q))[0];
const checksum = async (s: MariaServer, table: string): Promise<string> => String((await one(s, `CHECKSUM TABLE ${table}`)).Checksum);
const count = async (s: MariaServer, table: string): Promise<number> => Number((await one(s, `SELECT COUNT(*) AS n FROM ${table}`)).n);

beforeAll(async () => {
  // Each server its own admin password: the copy must not take the slave's login away.
  [master, replica, dr] = await Promise.all([startMariaDB(), startMariaDB(), startMariaDB()]);
  for (const s of [master, replica, dr]) SECRETS.add(s.password);
  SECRETS.add(REPL_PASSWORD);
  dir = tempDir('dbrepl-mysql-');
  env = { ...process.env, MASTER_PW: master.password, REPLICA_PW: replica.password, DR_PW: dr.password, REPLICATION_PASSWORD: REPL_PASSWORD };
  await master.query('CREATE DATABASE shop');
  await master.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB');
  await master.query(`INSERT INTO shop.orders VALUES (1, 'before enable')`);
  await master.query('CREATE EVENT shop.tick ON SCHEDULE EVERY 1 HOUR DO DELETE FROM shop.orders WHERE id < 0');
  await replica.query('CREATE DATABASE legacy');
  await replica.query(`CREATE TABLE legacy.kept (v VARCHAR(100))`);
  await replica.query(`INSERT INTO legacy.kept VALUES ('old-replica-row')`);
  config();
});

afterAll(async () => {
  await Promise.all([master, replica, dr].filter(Boolean).map((s) => s.destroy()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('mysql (MariaDB) replication', () => {
  let preserved: string;

  test('plan: both slaves to enable, nothing touched', async () => {
    const r = await run('plan', '--json', '--detailed-exitcode');
    expect(r.code).toBe(2);
    const plan = r.json();
    expect(plan.pairs.map((p: any) => [p.name, p.engine, p.live, p.action])).toEqual([
      ['shop/mysql-replica', 'mysql', 'standalone', 'enable'],
      ['shop-dr/mysql', 'mysql', 'standalone', 'enable'],
    ]);
    expect(plan.pairs[0].preserved).toMatch(new RegExp(`^${replica.dataDir}\\.dbrepl-\\d{8}T\\d{9}Z\\.sql\\.gz$`));
    expect(plan.pairs[0].steps.join('\n')).toContain('MASTER_USE_GTID=slave_pos');
    expect(plan.pairs[0].steps.join('\n')).toContain('mariabackup --backup --stream=mbstream');
    expect(plan.pairs[1].steps.join('\n')).toMatch(/logical copy, full and online: the pair says copy: logical/);
    expect(await count(replica, 'legacy.kept')).toBe(1);
  });

  test('apply enables both; a row written on the master is read on both slaves', async () => {
    const r = await run('apply', '--json');
    expect(r.stderr).not.toMatch(/failed/);
    expect(r.code).toBe(0);
    expect(r.json().pairs.map((p: any) => [p.name, p.result, p.error])).toEqual([
      ['shop/mysql-replica', 'done', null],
      ['shop-dr/mysql', 'done', null],
    ]);
    preserved = r.json().pairs[0].preserved;
    await master.query(`INSERT INTO shop.orders VALUES (2, 'after enable')`);
    for (const s of [replica, dr]) {
      await eventually(async () => (await count(s, 'shop.orders')) === 2, 20_000, 'row on slave');
      expect(await checksum(s, 'shop.orders')).toBe(await checksum(master, 'shop.orders'));
    }
  });

  test('the slaves are read-only, have server_ids of their own, and keep their own admin login', async () => {
    const ids = new Set<number>();
    for (const s of [master, replica, dr]) ids.add(Number((await one(s, 'SELECT @@server_id AS i')).i));
    expect(ids.size).toBe(3);
    expect(Number((await one(replica, 'SELECT @@read_only AS r')).r)).toBe(1);
    // The replica's admin password is its own (not the master's): this query logged in with it.
    expect(replica.password).not.toBe(master.password);
    expect(fs.readFileSync(replica.dbreplOptionsFile, 'utf8')).toMatch(/read_only = 1/);
    // An event copied from the master must not run on the slave as well.
    expect((await one(replica, `SELECT STATUS AS s FROM information_schema.EVENTS WHERE EVENT_NAME = 'tick'`)).s).toBe('SLAVESIDE_DISABLED');
    // The replication user holds only REPLICATION SLAVE.
    const grants = (await master.query(`SHOW GRANTS FOR 'replicator'@'127.0.0.1'`)).map((g: any) => String(Object.values(g)[0]));
    expect(grants).toEqual([expect.stringMatching(/^GRANT REPLICATION SLAVE ON \*\.\* TO `replicator`@`127\.0\.0\.1`/)]);
  });

  test("the slave's previous data is in the preserved dump", async () => {
    expect(fs.existsSync(preserved)).toBe(true);
    const { stdout } = await sh('/bin/sh', ['-c', `gunzip -c '${preserved}' | grep -c "old-replica-row"`]);
    expect(Number(stdout.trim())).toBeGreaterThanOrEqual(1);
    await expect(replica.query('SELECT * FROM legacy.kept')).rejects.toThrow(/Unknown database|doesn't exist/);
  });

  test('status replicating; next plan none; env for both applications', async () => {
    const s = (await run('status', '--json')).json();
    expect(s.pairs.map((p: any) => p.state)).toEqual(['replicating', 'replicating']);
    expect(s.pairs[0].lag_seconds).toBe(0);
    const plan = await run('plan', '--json', '--detailed-exitcode');
    expect(plan.code).toBe(0);
    const e = (await run('env', '--format', 'json')).json();
    expect(e).toEqual({
      shop: { MYSQL_ADDRESS: '127.0.0.1', MYSQL_PORT: String(master.port), MYSQL_SLAVE_ADDRESSES: `127.0.0.1:${dr.port},127.0.0.1:${replica.port}` },
      'shop-dr': { MYSQL_ADDRESS: '127.0.0.1', MYSQL_PORT: String(dr.port), MYSQL_SLAVE_ADDRESSES: '' },
    });
  });

  test('a restart keeps it a read-only slave', async () => {
    const id = Number((await one(replica, 'SELECT @@server_id AS i')).i);
    await replica.stop();
    await replica.start();
    expect(Number((await one(replica, 'SELECT @@server_id AS i')).i)).toBe(id);
    expect(Number((await one(replica, 'SELECT @@read_only AS r')).r)).toBe(1);
    await master.query(`INSERT INTO shop.orders VALUES (3, 'after restart')`);
    await eventually(async () => (await count(replica, 'shop.orders')) === 3, 20_000, 'row after restart');
    expect((await run('status', '--json')).json().pairs[0].state).toBe('replicating');
  });

  test('a duplicate-key error shows as broken and apply rebuilds the slave', async () => {
    await replica.query(`INSERT INTO shop.orders VALUES (1000, 'written on the slave by hand')`);
    await master.query(`INSERT INTO shop.orders VALUES (1000, 'written on the master')`);
    const status = await eventually(async () => {
      const st = (await run('status', '--json')).json();
      return st.pairs[0].state === 'broken' ? st : undefined;
    }, 20_000, 'broken state');
    expect(status.pairs[0].error).toMatch(/SQL thread stopped on error 1062: .*Duplicate entry '1000'/);
    expect(status.pairs[0].lag_seconds).toBeNull();
    const plan = (await run('plan', '--json')).json();
    expect(plan.pairs[0]).toMatchObject({ live: 'broken', action: 'resync' });
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    expect(r.json().pairs[0]).toMatchObject({ action: 'resync', result: 'done' });
    expect((await run('status', '--json')).json().pairs[0].state).toBe('replicating');
    expect(await checksum(replica, 'shop.orders')).toBe(await checksum(master, 'shop.orders'));
    expect((await one(replica, 'SELECT v FROM shop.orders WHERE id = 1000')).v).toBe('written on the master');
  });

  test('a writer on the master during enable loses no row and every row reaches the slave', async () => {
    await master.query('CREATE TABLE shop.live (id INT AUTO_INCREMENT PRIMARY KEY, at BIGINT) ENGINE=InnoDB');
    await master.query(`INSERT INTO shop.live (at) SELECT 0 FROM shop.seq_1_to_20000`);
    const conn = await createConnection({ host: master.host, port: master.port, user: 'admin', password: master.password });
    let stop = false;
    let written = 0;
    let longest = 0;
    let lastOk = Date.now();
    const writer = (async () => {
      while (!stop) {
        await conn.query('INSERT INTO shop.live (at) VALUES (?)', [Date.now()]);
        const now = Date.now();
        longest = Math.max(longest, now - lastOk);
        lastOk = now;
        written++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    let r;
    try {
      r = await run('resync', '--pair', 'shop-dr/mysql', '--json');
    } finally {
      stop = true;
      await writer;
      await conn.end();
    }
    expect(r.code).toBe(0);
    expect(written).toBeGreaterThan(50);
    await eventually(async () => (await count(dr, 'shop.live')) === (await count(master, 'shop.live')), 30_000, 'every row on the slave');
    expect(await checksum(dr, 'shop.live')).toBe(await checksum(master, 'shop.live'));
    console.log(`writer during enable: ${written} inserts, longest gap between two inserts ${longest} ms`);
  });

  test('disable: the slave is writable, no replication configured, its data complete', async () => {
    config('disabled');
    await master.query(`INSERT INTO shop.orders VALUES (4, 'just before disable')`);
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    expect(r.json().pairs[1]).toMatchObject({ action: 'disable', result: 'done' });
    expect(await checksum(dr, 'shop.orders')).toBe(await checksum(master, 'shop.orders'));
    expect(Number((await one(dr, 'SELECT @@read_only AS r')).r)).toBe(0);
    expect(await dr.query('SHOW SLAVE STATUS')).toEqual([]);
    await dr.query(`INSERT INTO shop.orders VALUES (5, 'written on the promoted dr')`);
    expect(fs.readFileSync(dr.dbreplOptionsFile, 'utf8')).toMatch(/read_only = 0/);
    const next = await run('plan', '--json', '--detailed-exitcode');
    expect(next.code).toBe(0);
    expect(r.json().env.shop.MYSQL_SLAVE_ADDRESSES).toBe(`127.0.0.1:${replica.port}`);
  });
});

describe('mysql (MariaDB) failures', () => {
  test('a copy that fails half-way restores the slave from its own dump', async () => {
    const m = await startMariaDB();
    const s = await startMariaDB();
    SECRETS.add(m.password);
    SECRETS.add(s.password);
    try {
      await m.query('CREATE DATABASE app');
      await m.query('CREATE TABLE app.t (i INT PRIMARY KEY)');
      await m.query('INSERT INTO app.t VALUES (1)');
      // A view whose table is gone: mariadb-dump stops with an error when it reaches it.
      await m.query('CREATE TABLE app.gone (i INT)');
      await m.query('CREATE VIEW app.v AS SELECT i FROM app.gone');
      await m.query('DROP TABLE app.gone');
      await s.query('CREATE DATABASE mine');
      await s.query('CREATE TABLE mine.t AS SELECT 42 AS answer');
      const file = writeYaml(dir, {
        version: 1,
        applications: { app: { servers: { main: server(m, 'M_PW'), replica: server(s, 'S_PW') } } },
        replications: [{ master: 'app/main', slave: 'app/replica', copy: 'logical', replication: { user: 'replicator', password: '${REPLICATION_PASSWORD}' } }],
      }, 'failing.yml');
      const r = await dbrepl(['apply', '--json', '-c', file], { ...env, M_PW: m.password, S_PW: s.password });
      expect(r.code).toBe(1);
      const p = r.json().pairs[0];
      expect(p.result).toBe('failed');
      expect(p.error).toMatch(/step "slave host: stream the master into the slave" failed: copying app\/main into app\/replica failed .*; the slave was restored from its dump .*\.sql\.gz/);
      expect(Number((await one(s, 'SELECT answer FROM mine.t')).answer)).toBe(42);
      // Nothing of the half-done copy is left.
      const dbs = (await s.query('SHOW DATABASES')).map((d: any) => d.Database);
      expect(dbs).not.toContain('app');
      expect(await s.query('SHOW SLAVE STATUS')).toEqual([]);
      expect(Number((await one(s, 'SELECT @@read_only AS r')).r)).toBe(0);
    } finally {
      await Promise.all([m.destroy(), s.destroy()]);
    }
  });
});
