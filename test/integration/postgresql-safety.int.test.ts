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
import { PgCluster, startPostgres } from '../support/postgres';
import { dbrepl, SECRETS, tempDir, writeYaml } from '../support/dbrepl';
import { eventually, sh } from '../support/sh';

const REPL_PASSWORD = `repl-${randomBytes(10).toString('hex')}`;
const clusters: PgCluster[] = [];
let dir: string;

async function pg(options: Parameters<typeof startPostgres>[0] = {}): Promise<PgCluster> {
  const c = await startPostgres(options);
  clusters.push(c);
  SECRETS.add(c.password);
  return c;
}

type Extra = Record<string, unknown>;
function pairConfig(name: string, master: PgCluster, slave: PgCluster, opts: { masterHost?: string; slaveHost?: string; master?: Extra; slave?: Extra } = {}) {
  const server = (c: PgCluster, v: string, host: string, extra: Extra = {}) => ({ engine: 'postgresql', host, port: c.port, user: 'postgres', password: `\${${v}}`, service: c.service, ...extra });
  const file = writeYaml(dir, {
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

beforeAll(() => {
  SECRETS.add(REPL_PASSWORD);
  dir = tempDir('dbrepl-pg-safety-');
});

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.destroy()));
  fs.rmSync(dir, { recursive: true, force: true });
});

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
  const victim = path.join(dir, 'root-owned-victim');
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
  const seen = path.join(dir, 'service-env');
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
