/**
 * MariaDB data-safety defects, against real servers started as the `mysql` user in
 * Debian's layout (test/support/mariadb.ts): one server under two names, a slave with
 * binary logging off (MariaDB's default), an option file the server must be able to read
 * after a restart, a copy that waits on a lock, and the checks that `plan` must make
 * (a missing or unread options_file directory, default service commands on a shared host).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { MariaServer, startMariaDB, MariaOptions } from '../support/mariadb';
import { dbrepl, scratch, writeYaml } from '../support/dbrepl';
import { eventually, sh } from '../support/sh';

const REPL_PASSWORD = `repl-${randomBytes(10).toString('hex')}`;
const { pool, dir: scratchDir } = scratch('dbrepl-my-safety-', [REPL_PASSWORD]);
const maria = (options: MariaOptions = {}): Promise<MariaServer> => pool.add(startMariaDB(options));

type Extra = Record<string, unknown>;
function server(s: MariaServer, v: string, extra: Extra = {}): Extra {
  return { engine: 'mysql', host: s.host, port: s.port, user: 'admin', password: `\${${v}}`, service: s.service, options_file: s.dbreplOptionsFile, ...extra };
}
function pairConfig(name: string, m: MariaServer, s: MariaServer, opts: { master?: Extra; slave?: Extra; pair?: Extra } = {}) {
  const file = writeYaml(scratchDir(), {
    version: 1,
    applications: { app: { servers: { main: server(m, 'M_PW', opts.master) } }, other: { servers: { replica: server(s, 'S_PW', opts.slave) } } },
    replications: [{ master: 'app/main', slave: 'other/replica', replication: { user: 'replicator', password: '${REPL_PW}' }, ...opts.pair }],
  }, `${name}.yml`);
  return { file, env: { ...process.env, M_PW: m.password, S_PW: s.password, REPL_PW: REPL_PASSWORD } };
}

const one = async (s: MariaServer, q: string): Promise<any> => (await s.query(q))[0];
const readOnly = async (s: MariaServer): Promise<number> => Number((await one(s, 'SELECT @@read_only AS r')).r);
const databases = async (s: MariaServer): Promise<string[]> => (await s.query('SHOW DATABASES')).map((d: any) => d.Database).sort();


test('one server under two names (127.0.0.1 and localhost) is refused by plan and apply; nothing is dropped', async () => {
  const s = await maria();
  await s.query('CREATE DATABASE precious');
  await s.query('CREATE TABLE precious.t AS SELECT 42 AS v');
  const { file, env } = pairConfig('two-names', s, s, { slave: { host: 'localhost' } });

  const plan = await dbrepl(['plan', '--json', '-c', file], env);
  expect(plan.code).toBe(1);
  expect(plan.json().pairs[0].error).toMatch(/^app\/main \(127\.0\.0\.1:\d+\) and other\/replica \(localhost:\d+\) are the same server \(@@hostname .*, @@datadir .*, @@port \d+\): a server cannot be its own slave/);

  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.code).toBe(1);
  expect(r.json().pairs[0]).toMatchObject({ result: 'failed', error: expect.stringContaining('are the same server') });
  expect(Number((await one(s, 'SELECT v FROM precious.t')).v)).toBe(42);
  expect(await readOnly(s)).toBe(0);
  expect(fs.existsSync(s.dbreplOptionsFile)).toBe(false);
});

describe('a slave with binary logging off (MariaDB\'s default)', () => {
  let m: MariaServer;
  let s: MariaServer;
  let cfg: { file: string; env: NodeJS.ProcessEnv };

  beforeAll(async () => {
    [m, s] = await Promise.all([maria(), maria({ logBin: false, serverId: 7 })]);
    await m.query('CREATE DATABASE shop');
    await m.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, v VARCHAR(50))');
    await m.query(`INSERT INTO shop.orders VALUES (1, 'on the master')`);
    await s.query('CREATE DATABASE legacy');
    await s.query(`CREATE TABLE legacy.kept AS SELECT 'old-slave-row' AS v`);
    cfg = pairConfig('binlog-off', m, s);
  });

  test('plan says no binary logs are reset; apply enables it; after a restart it is still a read-only slave', async () => {
    const plan = (await dbrepl(['plan', '--json', '-c', cfg.file], cfg.env)).json();
    expect(plan.pairs[0].error).toBeNull();
    const steps: string = plan.pairs[0].steps.join('\n');
    expect(steps).toContain('its binary logging is off, so no binary logs are reset');
    expect(steps).not.toContain('RESET MASTER');

    const r = await dbrepl(['apply', '--json', '-c', cfg.file], cfg.env);
    expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
    await m.query(`INSERT INTO shop.orders VALUES (2, 'after enable')`);
    await eventually(async () => Number((await one(s, 'SELECT COUNT(*) AS n FROM shop.orders')).n) === 2, 20_000, 'row on slave');

    // The option file is the server's to read: owned by the data directory's owner, not root-only.
    const st = fs.statSync(s.dbreplOptionsFile);
    expect(st.uid).toBe(fs.statSync(s.dataDir).uid);
    expect(st.mode & 0o777).toBe(0o644);
    await s.stop();
    await s.start();
    expect(await readOnly(s)).toBe(1);
    expect(Number((await one(s, 'SELECT @@server_id AS i')).i)).toBe(7);
    await m.query(`INSERT INTO shop.orders VALUES (3, 'after restart')`);
    await eventually(async () => Number((await one(s, 'SELECT COUNT(*) AS n FROM shop.orders')).n) === 3, 20_000, 'row after restart');
  });

  test('an option file the server cannot read is reported by plan, and a resync makes it readable', async () => {
    // As an earlier version wrote it: root's, mode 0600. The server (as mysql) skips it at start.
    fs.chownSync(s.dbreplOptionsFile, 0, 0);
    fs.chmodSync(s.dbreplOptionsFile, 0o600);
    const plan = await dbrepl(['plan', '--json', '-c', cfg.file], cfg.env);
    expect(plan.json().pairs[0].action).toBe('none');
    expect(plan.json().pairs[0].warnings).toEqual([expect.stringMatching(/^after a restart other\/replica read_only would be off: .*uid \d+.*run resync --pair other\/replica/)]);
    const r = await dbrepl(['resync', '--pair', 'other/replica', '--json', '-c', cfg.file], cfg.env);
    expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
    expect(fs.statSync(s.dbreplOptionsFile).mode & 0o777).toBe(0o644);
    expect((await dbrepl(['plan', '--json', '-c', cfg.file], cfg.env)).json().pairs[0].warnings).toEqual([]);
    await s.stop();
    await s.start();
    expect(await readOnly(s)).toBe(1);
  });

  test('a copy that fails restores its data and leaves read_only neither on nor persisted', async () => {
    const m2 = await maria();
    const s2 = await maria({ logBin: false, serverId: 9 });
    await m2.query('CREATE DATABASE app');
    // A view whose table is gone: the dump stops with an error when it reaches it.
    await m2.query('CREATE TABLE app.gone (i INT)');
    await m2.query('CREATE VIEW app.v AS SELECT i FROM app.gone');
    await m2.query('DROP TABLE app.gone');
    await s2.query('CREATE DATABASE mine');
    await s2.query('CREATE TABLE mine.t AS SELECT 42 AS answer');
    const before = await databases(s2);
    // The logical copy: its dump is what fails here (the physical copy has its own tests in mysql-physical).
    const { file, env } = pairConfig('binlog-off-fails', m2, s2, { pair: { copy: 'logical' } });
    const r = await dbrepl(['apply', '--json', '-c', file], env);
    expect(r.code).toBe(1);
    expect(r.json().pairs[0].error).toMatch(/step "slave host: stream the master into the slave" failed: .*; the slave was restored from its dump .*\.sql\.gz; its read_only, server_id and .*90-dbrepl\.cnf are as before/);
    expect(await databases(s2)).toEqual(before);
    expect(Number((await one(s2, 'SELECT answer FROM mine.t')).answer)).toBe(42);
    expect(await readOnly(s2)).toBe(0);
    expect(fs.existsSync(s2.dbreplOptionsFile)).toBe(false);
    await s2.stop();
    await s2.start();
    expect(await readOnly(s2)).toBe(0);
    expect(Number((await one(s2, 'SELECT @@server_id AS i')).i)).toBe(9);
  });
});

test('a copy that waits on a lock is stopped at copy_timeout and the slave restored', async () => {
  const m = await maria();
  const s = await maria();
  await m.query('CREATE DATABASE app');
  await m.query('CREATE TABLE app.t (i INT PRIMARY KEY)');
  await m.query('INSERT INTO app.t VALUES (1)');
  await s.query('CREATE DATABASE mine');
  await s.query('CREATE TABLE mine.t AS SELECT 42 AS answer');
  const { file, env } = pairConfig('lock-wait', m, s, { pair: { copy_timeout: '4s', copy: 'logical' } });
  // Another session holds the table: the dump's read waits on its metadata lock (for a day, by default).
  const holder = await createConnection({ host: m.host, port: m.port, user: 'admin', password: m.password });
  await holder.query('LOCK TABLES app.t WRITE');
  let r;
  const t0 = Date.now();
  try {
    r = await dbrepl(['apply', '--json', '-c', file], env);
  } finally {
    await holder.end();
  }
  expect(Date.now() - t0).toBeLessThan(60_000);
  expect(r.code).toBe(1);
  expect(r.json().pairs[0].error).toMatch(/step "slave host: stream the master into the slave" failed: copying app\/main into other\/replica on the runner \(local\) did not finish within 4 s and was stopped \(it ran: bash -c .*\); the slave was restored from its dump/);
  expect(Number((await one(s, 'SELECT answer FROM mine.t')).answer)).toBe(42);
  expect(await readOnly(s)).toBe(0);
  // The dump and the client were stopped with the shell that ran them.
  const left = await sh('pgrep', ['-f', `port=.${m.port}`], { allowFail: true });
  expect(left.stdout.trim()).toBe('');
});

describe('checks that plan makes, before anything is touched', () => {
  test('an options_file whose directory does not exist', async () => {
    const m = await maria();
    const s = await maria();
    const missing = path.join(s.base, 'no-such-dir', '90-dbrepl.cnf');
    const { file, env } = pairConfig('no-dir', m, s, { slave: { options_file: missing } });
    const plan = await dbrepl(['plan', '--json', '-c', file], env);
    expect(plan.code).toBe(1);
    expect(plan.json().pairs[0].error).toContain(`${path.dirname(missing)} does not exist on the runner (local): set options_file for other/replica to a file its server reads`);
    const r = await dbrepl(['apply', '--json', '-c', file], env);
    expect(r.json().pairs[0].result).toBe('failed');
    expect(await readOnly(s)).toBe(0);
  });

  test('an options_file in a directory the server does not read', async () => {
    const m = await maria();
    const s = await maria();
    const elsewhere = path.join(s.base, 'tmp', '90-dbrepl.cnf');
    const { file, env } = pairConfig('not-read', m, s, { slave: { options_file: elsewhere } });
    const plan = await dbrepl(['plan', '--json', '-c', file], env);
    expect(plan.code).toBe(1);
    expect(plan.json().pairs[0].error).toContain(`other/replica does not read ${elsewhere} (its option files, read as uid`);
    expect(plan.json().pairs[0].error).toContain(`directories it includes: ${path.join(s.base, 'conf.d')}`);
  });

  test('a master that must restart, without service commands, on the slave\'s host', async () => {
    const m = await maria({ logBin: false });
    const s = await maria();
    const { file, env } = pairConfig('shared-host', m, s, { master: { service: undefined } });
    const plan = await dbrepl(['plan', '--json', '-c', file], env);
    expect(plan.code).toBe(1);
    expect(plan.json().pairs[0].warnings).toContain('the master app/main must restart to turn on binary logging');
    expect(plan.json().pairs[0].error).toContain('app/main must restart and has no service commands; the default (systemctl stop mariadb) would stop every server of that host');
  });
});
