/**
 * PostgreSQL data-safety defects, each against real clusters: one server under two names,
 * an operator's reject rule, a planted symlink next to pg_hba.conf, a pg_hba.conf that is
 * a link, the environment of the file's service commands, and the default service
 * commands on a shared host. Each is refused by `plan` (exit 1, nothing touched) and
 * again by `apply`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PgCluster, startPostgres, withLocalTablespace } from '../support/postgres';
import { dbrepl, stateDirOf, scratch, writeYaml } from '../support/dbrepl';
import { eventually, sh } from '../support/sh';

const REPL_PASSWORD = `repl-${randomBytes(10).toString('hex')}`;
const { pool, dir: scratchDir } = scratch('dbrepl-pg-safety-', [REPL_PASSWORD]);
const pg = (options: Parameters<typeof startPostgres>[0] = {}): Promise<PgCluster> => pool.add(startPostgres(options));

type Extra = Record<string, unknown>;
function pairConfig(name: string, master: PgCluster, slave: PgCluster, opts: { masterHost?: string; slaveHost?: string; master?: Extra; slave?: Extra } = {}) {
  const server = (c: PgCluster, v: string, host: string, extra: Extra = {}) => ({ engine: 'postgresql', host, port: c.port, user: 'postgres', password: `\${${v}}`, service: c.service, ...extra });
  const file = writeYaml(scratchDir(), {
    version: 1,
    applications: {
      app: { servers: { main: server(master, 'M_PW', opts.masterHost ?? master.host, opts.master) } },
      other: { servers: { replica: server(slave, 'S_PW', opts.slaveHost ?? slave.host, opts.slave) } },
    },
    replications: [{ master: 'app/main', slave: 'other/replica', replication: { user: 'replicator', password: '${REPL_PW}' } }],
  }, `${name}.yml`);
  return { file, env: { ...process.env, M_PW: master.password, S_PW: slave.password, REPL_PW: REPL_PASSWORD } };
}

const inRecovery = async (c: PgCluster): Promise<boolean> => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r;
const keptCopies = (c: PgCluster): string[] => fs.readdirSync(path.dirname(c.dataDir)).filter((f) => f.includes('.dbrepl-'));


test('one cluster under two names (127.0.0.1 and localhost) is refused by plan and apply, naming both', async () => {
  const c = await pg();
  await c.query('CREATE TABLE precious AS SELECT 42 AS v');
  const { file, env } = pairConfig('two-names', c, c, { slaveHost: 'localhost' });

  const plan = await dbrepl(['plan', '--json', '--detailed-exitcode', '-c', file], env);
  expect(plan.code).toBe(1);
  const p = plan.json().pairs[0];
  expect(p.action).toBe('enable');
  expect(p.error).toMatch(/^app\/main \(127\.0\.0\.1:\d+\) and other\/replica \(localhost:\d+\) are the same server \(system_identifier \d+, data directory .*\): a server cannot be its own slave/);
  const text = await dbrepl(['plan', '-c', file], env);
  expect(text.stdout).toMatch(/refused: app\/main .* are the same server/);

  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.code).toBe(1);
  expect(r.json().pairs[0]).toMatchObject({ result: 'failed', error: expect.stringMatching(/^step "preflight: checks before any change" failed: .*are the same server/) });
  expect((await c.query<{ v: number }>('SELECT v FROM precious'))[0]!.v).toBe(42);
  expect(await c.query('SELECT * FROM pg_replication_slots')).toEqual([]);
  expect(keptCopies(c)).toEqual([]);
});

test("an operator's reject rule for the slave's address refuses the pair, quoting the rule and its line", async () => {
  const password = randomBytes(8).toString('hex');
  const hba = ['local all all trust', 'host replication all 127.0.0.1/32 reject', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n');
  const master = await pg({ password, hba });
  const slave = await pg({ password });
  await slave.query('CREATE TABLE mine AS SELECT 1 AS v');
  const before = fs.readFileSync(path.join(master.confDir, 'pg_hba.conf'), 'utf8');
  const { file, env } = pairConfig('reject', master, slave);

  const plan = await dbrepl(['plan', '--json', '-c', file], env);
  expect(plan.code).toBe(1);
  expect(plan.json().pairs[0].error).toContain(`${path.join(master.confDir, 'pg_hba.conf')} on app/main line 2 ("host replication all 127.0.0.1 255.255.255.255 reject") decides the replication login replicator from 127.0.0.1`);
  expect(plan.json().pairs[0].error).toContain('dbrepl does not override an operator\'s rule');

  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.code).toBe(1);
  expect(r.json().pairs[0].result).toBe('failed');
  expect(fs.readFileSync(path.join(master.confDir, 'pg_hba.conf'), 'utf8')).toBe(before);
  expect(await inRecovery(slave)).toBe(false);
  expect((await slave.query<{ v: number }>('SELECT v FROM mine'))[0]!.v).toBe(1);
});

test('a symlink planted at the old temporary name next to pg_hba.conf is not followed', async () => {
  const password = randomBytes(8).toString('hex');
  const hba = ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n');
  const master = await pg({ password, hba });
  const slave = await pg({ password });
  // What a database superuser can do through COPY ... TO PROGRAM: a link, as postgres, in
  // the directory of pg_hba.conf, to a file root owns.
  const victim = path.join(scratchDir(), 'root-owned-victim');
  fs.writeFileSync(victim, 'root data\n', { mode: 0o600 });
  const hbaFile = path.join(master.confDir, 'pg_hba.conf');
  await sh('runuser', ['-u', 'postgres', '--', 'ln', '-s', victim, `${hbaFile}.dbrepl-tmp`]);
  const { file, env } = pairConfig('planted', master, slave);

  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
  expect(fs.readFileSync(victim, 'utf8')).toBe('root data\n');
  expect(fs.statSync(victim).mode & 0o777).toBe(0o600);
  expect(fs.lstatSync(hbaFile).isSymbolicLink()).toBe(false);
  expect(fs.readFileSync(hbaFile, 'utf8')).toMatch(/^# dbrepl: replication login replicator from 127\.0\.0\.1/);
  // The rule was written as the directory's owner and keeps the file's owner.
  expect(fs.statSync(hbaFile).uid).toBe(fs.statSync(master.confDir).uid);
  await master.query('CREATE TABLE t AS SELECT 3 AS v');
  await eventually(async () => (await slave.query<{ v: number }>('SELECT v FROM t').catch(() => []))[0]?.v === 3, 20_000, 'row on slave');
});

test('a pg_hba.conf that is itself a link is refused unless the server says follow_symlinks', async () => {
  const password = randomBytes(8).toString('hex');
  const hba = ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n');
  const master = await pg({ password, hba, layout: 'debian' });
  const slave = await pg({ password });
  const hbaFile = path.join(master.confDir, 'pg_hba.conf');
  const real = path.join(master.confDir, 'pg_hba.real.conf');
  fs.renameSync(hbaFile, real);
  fs.symlinkSync(real, hbaFile);
  await sh('chown', ['-h', 'postgres:postgres', hbaFile]);

  const refused = pairConfig('hba-link', master, slave);
  const plan = await dbrepl(['plan', '--json', '-c', refused.file], refused.env);
  expect(plan.code).toBe(1);
  expect(plan.json().pairs[0].error).toContain(`${hbaFile} on the runner (local) is a symbolic link (to ${real}); dbrepl does not write through links unless the server sets follow_symlinks: true`);

  const allowed = pairConfig('hba-link-allowed', master, slave, { master: { follow_symlinks: true } });
  const r = await dbrepl(['apply', '--json', '-c', allowed.file], allowed.env);
  expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
  expect(fs.lstatSync(hbaFile).isSymbolicLink()).toBe(true);
  expect(fs.readFileSync(real, 'utf8')).toMatch(/^# dbrepl: replication login replicator/);
});

test('service commands from the file run without the tokens, the file\'s secrets or the runner\'s environment', async () => {
  const password = randomBytes(8).toString('hex');
  const master = await pg({ password });
  const slave = await pg({ password });
  const seen = path.join(scratchDir(), 'service-env');
  const dump = (what: string, line: string) => `env > ${seen}-${what}; ${line}`;
  const { file, env } = pairConfig('env', master, slave, { slave: { service: { stop: dump('stop', slave.service.stop), start: dump('start', slave.service.start) } } });
  const tokens = { 'INPUT_GITHUB-TOKEN': `ghs_${randomBytes(12).toString('hex')}`, 'INPUT_SECRETS-TOKEN': `github_pat_${randomBytes(12).toString('hex')}`, DBREPL_UNRELATED_SECRET: randomBytes(8).toString('hex') };
  // In the runner's own environment too, as in an action run (INPUT_* are set by the runner).
  Object.assign(process.env, tokens);
  let r;
  try {
    r = await dbrepl(['apply', '--json', '-c', file], { ...env, ...tokens });
  } finally {
    for (const k of Object.keys(tokens)) delete process.env[k];
  }
  expect(r.json().pairs[0]).toMatchObject({ result: 'done' });
  for (const what of ['stop', 'start']) {
    const text = fs.readFileSync(`${seen}-${what}`, 'utf8');
    for (const value of [...Object.values(tokens), master.password, slave.password, REPL_PASSWORD]) expect(text).not.toContain(value);
    for (const name of [...Object.keys(tokens), 'M_PW', 'S_PW', 'REPL_PW']) expect(text).not.toContain(`${name}=`);
    expect(text).toMatch(/^PATH=/m);
  }
});

test('no service commands for a slave on its master\'s host: refused by plan, before anything stops', async () => {
  const password = randomBytes(8).toString('hex');
  const master = await pg({ password });
  const slave = await pg({ password });
  const { file, env } = pairConfig('shared-host', master, slave, { slave: { service: undefined } });
  const plan = await dbrepl(['plan', '--json', '-c', file], env);
  expect(plan.code).toBe(1);
  expect(plan.json().pairs[0].error).toContain('other/replica runs on the same host as its master and has no service commands; the default (systemctl stop postgresql) would stop every cluster there');
  expect(await inRecovery(slave)).toBe(false);
});

test('an undo that fails keeps the lock and journal; the next plan names it, and the next apply retries the rollback', async () => {
  const password = randomBytes(8).toString('hex');
  const master = await pg({ password });
  const slave = await pg({ password });
  // A tablespace outside the data directory: on the same host its path is taken, so the copy fails.
  await withLocalTablespace(master);
  // ... and the slave's start command fails, so the undo cannot finish.
  const broken = pairConfig('undo-fails', master, slave, { slave: { service: { stop: slave.service.stop, start: 'echo "start refused" >&2; exit 4' } } });
  const r = await dbrepl(['apply', '--json', '-c', broken.file], broken.env);
  expect(r.code).toBe(1);
  const dir = stateDirOf('postgresql', slave.port);
  expect(r.json().pairs[0].error).toMatch(
    new RegExp(`step "slave: pg_basebackup from the master" failed: .*undoing "slave: move the data directory aside" failed .*start refused.*; the lock and journal of other/replica stay in ${dir} on the runner \\(local\\): the next run tries the rollback again \\(the slave's previous data is at .*\\)`),
  );
  const journal = fs.readFileSync(`${dir}/lock/journal`, 'utf8');
  expect(journal).toContain('"phase":"failed"');
  expect(journal).toContain('"outcome":"undo-failed"');
  // The data was put back before the start failed.
  expect(fs.existsSync(path.join(slave.dataDir, 'PG_VERSION'))).toBe(true);
  // The operator starts the slave; the next plan names what is left to finish (its run is gone: this process ended).
  await slave.start();
  const next = await dbrepl(['plan', '--json', '-c', broken.file], broken.env);
  expect(next.json().pairs[0].interrupted).toMatch(/^interrupted enable of other\/replica at step \d+ of \d+ \(slave: pg_basebackup .*undoing it failed before: .*start refused/);
  expect(next.json().pairs[0].warnings.join('\n')).toContain('apply rolls it back first');
  // With the start command fixed, apply finishes the rollback by itself (then tries the enable again,
  // which fails on the tablespace as before and is rolled back cleanly): nothing is left locked.
  const fixed = pairConfig('undo-fixed', master, slave);
  const again = await dbrepl(['apply', '--json', '-c', fixed.file], fixed.env);
  expect(again.stderr).toContain('rollback of the interrupted enable');
  expect(again.json().pairs[0].result).toBe('failed');
  expect(again.json().pairs[0].error).toContain('pg_basebackup');
  expect(fs.existsSync(`${dir}/lock`)).toBe(false);
  expect(await inRecovery(slave)).toBe(false);
});

test('prune never takes a declared slave for drift because a second name reaches it', async () => {
  const password = randomBytes(8).toString('hex');
  const master = await pg({ password });
  const slave = await pg({ password });
  const enabled = pairConfig('prune-base', master, slave);
  expect((await dbrepl(['apply', '--json', '-c', enabled.file], enabled.env)).json().pairs[0].result).toBe('done');
  const server = (c: PgCluster, v: string, host: string) => ({ engine: 'postgresql', host, port: c.port, user: 'postgres', password: `\${${v}}`, service: c.service });
  const file = writeYaml(scratchDir(), {
    version: 1,
    applications: {
      app: { servers: { main: server(master, 'M_PW', '127.0.0.1') } },
      other: { servers: { replica: server(slave, 'S_PW', '127.0.0.1') } },
      // The same replica, for a reporting application's variables, under another name.
      reporting: { servers: { pg: server(slave, 'S_PW', 'localhost') } },
    },
    replications: [{ master: 'app/main', slave: 'other/replica', replication: { user: 'replicator', password: '${REPL_PW}' } }],
    prune: true,
  }, 'prune-identity.yml');
  const plan = await dbrepl(['plan', '--json', '--detailed-exitcode', '-c', file], enabled.env);
  expect(plan.json().drift).toEqual([]);
  expect(plan.code).toBe(0);
  expect(await inRecovery(slave)).toBe(true);
});

test('a dbrepl rule on disk that a killed run never reloaded is put in force before the copy', async () => {
  const password = randomBytes(8).toString('hex');
  const hba = ['# dbrepl: replication login replicator from 127.0.0.1 (first added for other/replica)', 'host replication "replicator" 127.0.0.1/32 scram-sha-256', 'local all all trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n');
  // The server starts with rules that do not admit the slave; the file is then edited, not reloaded.
  const master = await pg({ password, hba: hba.split('\n').slice(2).join('\n') });
  fs.writeFileSync(path.join(master.confDir, 'pg_hba.conf'), hba);
  const slave = await pg({ password });
  const { file, env } = pairConfig('not-reloaded', master, slave);
  const plan = (await dbrepl(['plan', '--json', '-c', file], env)).json();
  expect(plan.pairs[0].steps).toContain(`master: ${path.join(master.confDir, 'pg_hba.conf')} line 2 admits replicator from 127.0.0.1; reload (pg_reload_conf) so the file on disk is in force`);
  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
});

test('a master that must restart, without service commands, on its slave\'s machine: refused by plan', async () => {
  const password = randomBytes(8).toString('hex');
  const master = await pg({ password, settings: { wal_level: 'minimal', max_wal_senders: '0' } });
  const slave = await pg({ password });
  const { file, env } = pairConfig('master-restart-shared', master, slave, { master: { service: undefined } });
  const plan = await dbrepl(['plan', '--json', '-c', file], env);
  expect(plan.code).toBe(1);
  expect(plan.json().pairs[0].error).toContain('app/main must restart and has no service commands; the default (systemctl stop postgresql) would stop every cluster of that host, other/replica included');
  expect((await master.query<{ wal_level: string }>('SHOW wal_level'))[0]!.wal_level).toBe('minimal');
});
