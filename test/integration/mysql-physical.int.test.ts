/**
 * MariaDB's physical copy (mariabackup --stream=mbstream, mbstream -x, --prepare, a swap of
 * the slave's data directory) against live MariaDB 10.11 servers started as `mysql` in
 * Debian's layout (test/support/mariadb.ts): the plan names the copy, the slave serves
 * until the swap, keeps its own admin login, survives a restart as a read-only slave; a
 * start that fails on the copy and a backup cut short are undone, the slave back on its
 * own data directory; `copy: physical` that cannot be honoured is refused by plan.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { MariaServer, startMariaDB } from '../support/mariadb';
import { dbrepl, scratch, writeYaml } from '../support/dbrepl';
import { eventually } from '../support/sh';

const REPL = `repl-${randomBytes(10).toString('hex')}`;
const { pool, dir } = scratch('dbrepl-physical-', [REPL]);

function server(s: MariaServer, v: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'mysql', host: s.host, port: s.port, user: 'admin', password: `\${${v}}`, service: s.service, options_file: s.dbreplOptionsFile, ...over };
}

function file(m: MariaServer, s: MariaServer, pair: Record<string, unknown> = {}, slave: Record<string, unknown> = {}, name = 'replication.yml'): string {
  return writeYaml(
    dir(),
    {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL}' } },
      applications: { app: { servers: { main: server(m, 'M'), replica: server(s, 'S', slave) } } },
      replications: [{ master: 'app/main', slave: 'app/replica', ...pair }],
    },
    name,
  );
}

const envOf = (m: MariaServer, s: MariaServer): NodeJS.ProcessEnv => ({ ...process.env, M: m.password, S: s.password, REPL });
const one = async (s: MariaServer, q: string): Promise<any> => (await s.query(q))[0];
const siblings = (s: MariaServer): string[] => fs.readdirSync(s.base).filter((f) => f.startsWith('data.dbrepl-'));

async function masterWithData(): Promise<MariaServer> {
  const m = await pool.add(startMariaDB());
  await m.query('CREATE DATABASE shop');
  await m.query('CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB');
  await m.query(`INSERT INTO shop.orders (v) SELECT REPEAT('x', 200) FROM shop.seq_1_to_20000`);
  await m.query('CREATE TABLE shop.notes (v TEXT) ENGINE=Aria');
  await m.query(`INSERT INTO shop.notes VALUES ('aria row')`);
  return m;
}

describe('MariaDB physical copy', () => {
  test('an empty slave: the plan names mariabackup and keeps no dump; apply swaps in the copy while a writer runs', async () => {
    const m = await masterWithData();
    const s = await pool.add(startMariaDB());
    const yml = file(m, s);
    const env = envOf(m, s);

    const plan = await dbrepl(['plan', '--json', '-c', yml], env);
    expect(plan.code).toBe(0);
    const p = plan.json().pairs[0];
    const steps = p.steps.join('\n');
    expect(steps).toContain('mariabackup --backup --stream=mbstream');
    expect(steps).toContain('mariabackup --prepare');
    expect(steps).not.toMatch(/mariadb-dump .*\| gzip/);
    expect(p.preserved).toBeNull();

    // The slave keeps serving while the copy is made: a connection opened now answers until the swap.
    const conn = await createConnection({ host: s.host, port: s.port, user: 'admin', password: s.password });
    const writer = await createConnection({ host: m.host, port: m.port, user: 'admin', password: m.password });
    let stop = false;
    let written = 0;
    const writing = (async () => {
      while (!stop) {
        await writer.query('INSERT INTO shop.orders (v) VALUES (?)', ['during']);
        written++;
      }
    })();
    const r = await dbrepl(['apply', '--json', '-c', yml], env);
    stop = true;
    await writing;
    await writer.end();
    expect(r.code).toBe(0);
    expect(r.json().pairs[0].result).toBe('done');
    expect(r.stderr).toMatch(/mariabackup --backup --stream=mbstream .*\n.*copy finished/);
    await expect(conn.query('SELECT 1')).rejects.toThrow();
    conn.destroy();

    const total = Number((await one(m, 'SELECT COUNT(*) AS n FROM shop.orders')).n);
    expect(total).toBe(20000 + written);
    await eventually(async () => Number((await one(s, 'SELECT COUNT(*) AS n FROM shop.orders')).n) === total, 30_000, 'every row on the slave');
    expect((await one(s, 'SELECT v FROM shop.notes')).v).toBe('aria row');
    const st = await one(s, 'SHOW SLAVE STATUS');
    expect([st.Slave_IO_Running, st.Slave_SQL_Running, st.Using_Gtid]).toEqual(['Yes', 'Yes', 'Slave_Pos']);
    expect(Number((await one(s, 'SELECT @@read_only AS r')).r)).toBe(1);
    // Its own admin login (the test's s.query uses it) works on the copy, which holds the master's accounts.
    expect((await one(s, 'SELECT CURRENT_USER() AS u')).u).toBe('admin@%');
    // Nothing left over: no stage, no old directory, no init file, no init_file setting.
    expect(siblings(s)).toEqual([]);
    expect(fs.existsSync(path.join(s.dataDir, 'dbrepl-init.sql'))).toBe(false);
    expect(fs.readFileSync(s.dbreplOptionsFile, 'utf8')).not.toContain('init_file');
    expect(fs.statSync(path.join(s.dataDir, 'ibdata1')).uid).toBe(fs.statSync(s.dataDir).uid);

    // A restart as the service does it: read-only, replicating, its own login.
    await s.stop();
    await s.start();
    await m.query(`INSERT INTO shop.orders (v) VALUES ('after restart')`);
    await eventually(async () => Number((await one(s, `SELECT COUNT(*) AS n FROM shop.orders WHERE v = 'after restart'`)).n) === 1, 30_000, 'replication after a restart');
    expect(Number((await one(s, 'SELECT @@read_only AS r')).r)).toBe(1);

    const again = await dbrepl(['plan', '--json', '-c', yml], env);
    expect(again.json().pairs[0].action).toBe('none');
  });

  test('a slave with databases of its own: they are dumped first; a start that fails on the copy puts its own data directory back', async () => {
    const m = await masterWithData();
    const s = await pool.add(startMariaDB());
    await s.query('CREATE DATABASE mine');
    await s.query('CREATE TABLE mine.t AS SELECT 42 AS answer');
    // The first start after the swap fails (as a copy the server cannot open would); later starts work.
    const marker = path.join(s.base, 'fail-next-start');
    fs.writeFileSync(marker, '');
    const yml = file(m, s, {}, { service: { stop: s.service.stop, start: `if [ -e ${marker} ]; then rm -f ${marker}; exit 1; fi; ${s.service.start}` } });
    const env = envOf(m, s);
    const optionsBefore = fs.existsSync(s.dbreplOptionsFile) ? fs.readFileSync(s.dbreplOptionsFile, 'utf8') : null;

    const plan = (await dbrepl(['plan', '--json', '-c', yml], env)).json().pairs[0];
    expect(plan.preserved).toMatch(/\.sql\.gz$/);
    expect(plan.steps.join('\n')).toContain('mariabackup --backup');

    const r = await dbrepl(['apply', '--json', '-c', yml], env);
    expect(r.code).toBe(1);
    const p = r.json().pairs[0];
    expect(p.result).toBe('failed');
    expect(p.error).toMatch(/stop, swap its data directory for the copy, start" failed: start command of app\/replica/);
    expect(p.error).toMatch(/runs on its own data directory again/);
    expect(Number((await one(s, 'SELECT answer FROM mine.t')).answer)).toBe(42);
    expect((await s.query('SHOW DATABASES')).map((d: any) => d.Database)).not.toContain('shop');
    expect(await s.query('SHOW SLAVE STATUS')).toEqual([]);
    expect(Number((await one(s, 'SELECT @@read_only AS r')).r)).toBe(0);
    // The kept dump stays; the stage and the moved-aside directory are gone; the option file is as it was.
    expect(siblings(s).filter((f) => !f.endsWith('.sql.gz'))).toEqual([]);
    expect(fs.existsSync(s.dbreplOptionsFile) ? fs.readFileSync(s.dbreplOptionsFile, 'utf8') : null).toBe(optionsBefore);

    // The next apply converges, and the slave's own database is in the dump it kept.
    const again = await dbrepl(['apply', '--json', '-c', yml], env);
    expect(again.code).toBe(0);
    const kept = again.json().pairs[0].preserved as string;
    expect(fs.existsSync(kept)).toBe(true);
    expect((await one(s, 'SELECT v FROM shop.notes')).v).toBe('aria row');
    expect((await s.query('SHOW DATABASES')).map((d: any) => d.Database)).not.toContain('mine');
  });

  test('a backup cut short by copy_timeout is undone; the slave served throughout', async () => {
    const m = await masterWithData();
    // Enough data that the backup outlasts a one-second bound.
    await m.query(`INSERT INTO shop.orders (v) SELECT REPEAT('y', 200) FROM shop.seq_1_to_400000`);
    const s = await pool.add(startMariaDB());
    const yml = file(m, s, { copy_timeout: '1s' });
    const conn = await createConnection({ host: s.host, port: s.port, user: 'admin', password: s.password });
    const r = await dbrepl(['apply', '--json', '-c', yml], envOf(m, s));
    expect(r.code).toBe(1);
    expect(r.json().pairs[0].error).toMatch(/stream a physical backup of the master into the slave host" failed: streaming a physical backup of app\/main .* did not finish within 1 s and was stopped/);
    expect((await conn.query('SELECT 1 AS x'))[0]).toEqual([{ x: 1 }]);
    await conn.end();
    expect(siblings(s)).toEqual([]);
    expect(Number((await one(s, 'SELECT @@read_only AS r')).r)).toBe(0);
    expect(await s.query('SHOW SLAVE STATUS')).toEqual([]);
  });

  test('copy: physical that cannot be honoured is refused by plan, naming why; auto falls back to the dump', async () => {
    const m = await masterWithData();
    const s = await pool.add(startMariaDB());
    const noService = { service: undefined };
    const forced = await dbrepl(['plan', '--json', '-c', file(m, s, { copy: 'physical' }, noService, 'forced.yml')], envOf(m, s));
    expect(forced.code).toBe(1);
    expect(forced.json().pairs[0].error).toMatch(/says copy: physical, but the slave must restart onto the copy and app\/replica has no service commands/);
    const auto = await dbrepl(['plan', '--json', '-c', file(m, s, {}, noService, 'auto.yml')], envOf(m, s));
    expect(auto.code).toBe(0);
    expect(auto.json().pairs[0].steps.join('\n')).toMatch(/logical copy, full and online: the slave must restart onto the copy/);
  });
});
