/**
 * PostgreSQL enable when the master needs work first or the rebuild cannot go through:
 * a master restart announced by the plan, a login that would not survive the copy, and a
 * pg_basebackup failure that puts the slave back as it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PgCluster, startPostgres, withLocalTablespace } from '../support/postgres';
import { dbrepl, scratch, tempDir, writeYaml } from '../support/dbrepl';
import { eventually, sh } from '../support/sh';

const REPL_PASSWORD = `repl-${randomBytes(10).toString('hex')}`;
const { pool, dir: scratchDir } = scratch('dbrepl-preflight-', [REPL_PASSWORD]);
const pg = (options: Parameters<typeof startPostgres>[0]): Promise<PgCluster> => pool.add(startPostgres(options));

function pairConfig(name: string, master: PgCluster, slave: PgCluster): { file: string; env: NodeJS.ProcessEnv } {
  const server = (c: PgCluster, v: string) => ({ engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: `\${${v}}`, service: c.service });
  const file = writeYaml(scratchDir(), {
    version: 1,
    applications: { app: { servers: { main: server(master, 'M_PW'), replica: server(slave, 'S_PW') } } },
    replications: [{ master: 'app/main', slave: 'app/replica', replication: { user: 'replicator', password: '${REPL_PW}' } }],
  }, `${name}.yml`);
  return { file, env: { ...process.env, M_PW: master.password, S_PW: slave.password, REPL_PW: REPL_PASSWORD } };
}


test('a master with wal_level=minimal: the plan announces the restart, apply does it', async () => {
  const password = randomBytes(8).toString('hex');
  const master = await pg({ password, settings: { wal_level: 'minimal', max_wal_senders: '0' } });
  const slave = await pg({ password });
  const { file, env } = pairConfig('minimal', master, slave);

  const plan = (await dbrepl(['plan', '--json', '-c', file], env)).json();
  expect(plan.pairs[0].action).toBe('enable');
  expect(plan.pairs[0].steps[0]).toMatch(/^master: ALTER SYSTEM SET wal_level=replica, max_wal_senders=\d+ and restart the master$/);
  expect(plan.pairs[0].warnings[0]).toMatch(/must restart to change wal_level, max_wal_senders/);
  expect(plan.pairs[0].disruption).toMatch(/^master restarts/);
  // Planning restarted nothing.
  expect((await master.query<{ wal_level: string }>('SHOW wal_level'))[0]!.wal_level).toBe('minimal');

  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
  expect((await master.query<{ wal_level: string }>('SHOW wal_level'))[0]!.wal_level).toBe('replica');
  await master.query('CREATE TABLE t AS SELECT 7 AS v');
  await eventually(async () => (await slave.query<{ v: number }>('SELECT v FROM t').catch(() => []))[0]?.v === 7, 20_000, 'row on slave');
});

test("a slave whose admin login would not survive the copy is refused before anything changes", async () => {
  const master = await pg({});
  const slave = await pg({}); // its own, different, superuser password
  await slave.query('CREATE TABLE mine AS SELECT 1 AS v');
  const { file, env } = pairConfig('login', master, slave);
  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.code).toBe(1);
  const p = r.json().pairs[0];
  expect(p.result).toBe('failed');
  expect(p.error).toMatch(/step "preflight: [^"]*" failed: after the copy app\/replica will have the roles of app\/main, but its login from the file \(user postgres\) does not work on app\/main: .*give both servers the same admin user and password/);
  expect((await slave.query<{ v: number }>('SELECT v FROM mine'))[0]!.v).toBe(1);
  expect(fs.readdirSync(path.dirname(slave.dataDir)).filter((f) => f.includes('.dbrepl-'))).toEqual([]);
  expect(await master.query('SELECT * FROM pg_replication_slots')).toEqual([]);
});

test('a failed pg_basebackup puts the slave back on its previous data and restarts it', async () => {
  const password = randomBytes(8).toString('hex');
  const master = await pg({ password });
  const slave = await pg({ password });
  // A tablespace outside the data directory: on the same host its path is taken, so the copy fails.
  await withLocalTablespace(master);
  await master.query('CREATE TABLE in_ts (v int) TABLESPACE extra');
  await slave.query('CREATE TABLE mine AS SELECT 1 AS v');
  const { file, env } = pairConfig('rollback', master, slave);

  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.code).toBe(1);
  const p = r.json().pairs[0];
  expect(p.result).toBe('failed');
  expect(p.error).toMatch(/step "slave: pg_basebackup from the master" failed: .*pg_basebackup failed .*; the slave's previous data was put back at .* and the server restarted/);
  expect((await slave.query<{ v: number }>('SELECT v FROM mine'))[0]!.v).toBe(1);
  expect((await slave.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
  expect(fs.readdirSync(path.dirname(slave.dataDir)).filter((f) => f.includes('.dbrepl-'))).toEqual([]);
});

test('replication live but absent from the file is drift; prune: true disables it', async () => {
  const password = randomBytes(8).toString('hex');
  const master = await pg({ password });
  const slave = await pg({ password });
  const { file, env } = pairConfig('drift', master, slave);
  expect((await dbrepl(['apply', '--json', '-c', file], env)).code).toBe(0);

  const server = (c: PgCluster, v: string) => ({ engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: `\${${v}}`, service: c.service });
  const undeclared = (prune: boolean) => writeYaml(scratchDir(), {
    version: 1,
    applications: { app: { servers: { main: server(master, 'M_PW'), replica: server(slave, 'S_PW') } } },
    prune,
  }, `drift-${prune}.yml`);

  const seen = (await dbrepl(['plan', '--json', '--detailed-exitcode', '-c', undeclared(false)], env));
  expect(seen.code).toBe(0);
  expect(seen.json().drift).toEqual([
    expect.objectContaining({ slave: 'app/replica', master: 'app/main', action: 'none', reason: expect.stringContaining('set prune: true') }),
  ]);

  const pruned = await dbrepl(['apply', '--json', '-c', undeclared(true)], env);
  expect(pruned.code).toBe(0);
  expect(pruned.json().changes).toBe(1);
  expect(pruned.json().drift[0]).toMatchObject({ action: 'disable', result: 'done' });
  expect((await slave.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
  expect(await master.query('SELECT slot_name FROM pg_replication_slots')).toEqual([]);
  expect((await dbrepl(['plan', '--json', '-c', undeclared(true)], env)).json().drift).toEqual([]);
});

test('a slave without room for the copy next to its kept data is refused before it stops', async () => {
  const password = randomBytes(8).toString('hex');
  const small = tempDir('dbrepl-small-');
  await sh('mount', ['-t', 'tmpfs', '-o', 'size=80m', 'dbrepl-test', small]);
  try {
    const master = await pg({ password });
    const slave = await startPostgres({ password, parent: small });
    try {
      await master.query(`CREATE TABLE big AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 120000) g`);
      const { file, env } = pairConfig('disk', master, slave);
      const r = await dbrepl(['apply', '--json', '-c', file], env);
      expect(r.code).toBe(1);
      expect(r.json().pairs[0].error).toMatch(/step "preflight: [^"]*" failed: .* has [\d.]+ MiB free; the copy of app\/main needs about [\d.]+ MiB while the previous data is kept; free some space first/);
      // Still running, still standalone, nothing moved.
      expect((await slave.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
      expect(fs.readdirSync(slave.base).filter((f) => f.includes('.dbrepl-'))).toEqual([]);
    } finally {
      await slave.destroy();
    }
  } finally {
    await sh('umount', [small], { allowFail: true });
    fs.rmSync(small, { recursive: true, force: true });
  }
});

test('a slave with lower max_connections than its master is refused before it stops', async () => {
  const password = randomBytes(8).toString('hex');
  const master = await pg({ password, settings: { max_connections: '120' } });
  const slave = await pg({ password, settings: { max_connections: '40' } });
  const { file, env } = pairConfig('minimums', master, slave);
  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.code).toBe(1);
  expect(r.json().pairs[0].error).toMatch(/the slave's own settings are lower than the master's \(max_connections 40 < 120\); a standby refuses to run with them/);
  expect((await slave.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
  expect(await master.query('SELECT * FROM pg_replication_slots')).toEqual([]);
});
