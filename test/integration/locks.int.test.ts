/**
 * Safe to run twice, concurrently, and to interrupt, on live PostgreSQL clusters with the
 * committed bundle run as its own process: another run's lock (alive: wait, then fail
 * naming it; gone: taken over), the master's lock held on the master, SIGINT in the middle
 * of a copy (stopped, rolled back, locks released), SIGKILL in the middle of a copy (the
 * next plan names it, the next apply rolls it back and converges).
 */
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { CliProcess, stepStarted } from '../support/cli-process';
import { dbrepl, scratch, stateDirOf, writeYaml } from '../support/dbrepl';
import { PgCluster, startPostgres } from '../support/postgres';
import { eventually, sh } from '../support/sh';

const REPL = `repl-${randomBytes(8).toString('hex')}`;
const { pool, dir } = scratch('dbrepl-locks-', [REPL]);
let master: PgCluster;
let slave: PgCluster;
let env: NodeJS.ProcessEnv;
let file: string;
const PAIR = 'app/replica';

const inRecovery = async (c: PgCluster): Promise<boolean> => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r;
const rows = async (c: PgCluster): Promise<number> => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM marks'))[0]!.n);
const copying = async (): Promise<string> => (await sh('pgrep', ['-af', `pg_basebackup.*${slave.dataDir}`], { allowFail: true })).stdout.trim();
const lockDir = (): string => `${stateDirOf('postgresql', slave.port)}/lock`;
const run = (...args: string[]) => dbrepl([...args, '-c', file], env);

/** A lock as another run on this machine would hold it: its owner a live process of ours. */
function plantLock(pid: number): void {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  fs.mkdirSync(lockDir(), { recursive: true, mode: 0o700 });
  const owner = {
    run: 'run-elsewhere',
    token: 'tok',
    host: 'here',
    machine: fs.readFileSync('/etc/machine-id', 'utf8').trim(),
    boot: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    pid,
    pidStart: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
    since: new Date().toISOString(),
  };
  fs.writeFileSync(`${lockDir()}/owner`, JSON.stringify(owner));
  fs.writeFileSync(`${lockDir()}/heartbeat`, '');
}

beforeAll(async () => {
  const password = `pg-${randomBytes(8).toString('hex')}`;
  [master, slave] = await Promise.all([pool.add(startPostgres({ password })), pool.add(startPostgres({ password }))]);
  env = { ...process.env, PG_PW: password, REPL_PW: REPL };
  const pg = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, password: '${PG_PW}', service: c.service });
  file = writeYaml(dir(), {
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
    applications: { app: { servers: { main: pg(master), replica: pg(slave) } } },
    replications: [{ master: 'app/main', slave: 'app/replica' }],
  });
  // About 100 MB: a copy long enough to be interrupted in its middle.
  await master.query(`CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 30) AS v FROM generate_series(1, 100000) g`);
  await master.query('CREATE TABLE marks (id serial PRIMARY KEY, at timestamptz DEFAULT now())');
  await master.query('INSERT INTO marks DEFAULT VALUES');
});

describe('locks', () => {
  let sleeper: ChildProcess;
  afterAll(() => sleeper?.kill('SIGKILL'));

  test("another run's lock, alive: apply fails at once naming it, waits --lock-timeout, touches nothing", async () => {
    sleeper = spawn('sleep', ['300']);
    plantLock(sleeper.pid!);
    const plan = await run('plan', '--json');
    expect(plan.json().pairs[0].warnings.join('\n')).toMatch(/app\/replica is locked by run run-elsewhere \(pid \d+ on here, since .*\), renewed \d+ s ago; apply waits up to --lock-timeout/);
    const r = await run('apply', '--json');
    expect(r.code).toBe(1);
    expect(r.json().pairs[0].error).toMatch(/app\/replica is locked by run run-elsewhere \(pid \d+ on here, since .*\), renewed \d+ s ago; waited 0 s \(--lock-timeout\)/);
    const t0 = Date.now();
    const waited = await run('apply', '--json', '--lock-timeout', '2s');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
    expect(waited.json().pairs[0].error).toContain('waited 2 s (--lock-timeout)');
    expect(await inRecovery(slave)).toBe(false);
    expect(await master.query('SELECT * FROM pg_replication_slots')).toEqual([]);
  });

  test('its run gone (the process ended): the plan says so and apply takes the lock over, then enables', async () => {
    sleeper.kill('SIGKILL');
    await eventually(async () => !fs.existsSync(`/proc/${sleeper.pid}`), 5000, 'the sleeper to end');
    const plan = await run('plan', '--json');
    expect(plan.json().pairs[0].warnings.join('\n')).toMatch(/has a lock left by run run-elsewhere .*, which is gone \(its process \d+ has ended\); apply takes it over/);
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/took over the lock of app\/replica from run run-elsewhere .*: its process \d+ has ended/);
    expect(r.json().pairs[0].result).toBe('done');
    expect(fs.existsSync(lockDir())).toBe(false);
    await eventually(async () => (await rows(slave)) === 1, 20_000, 'the slave to have the mark');
  });

  test("the master's lock, held by another session on the master: a resync waits, then fails naming it", async () => {
    const other = new Client({ host: master.host, port: master.port, user: 'postgres', password: master.password, database: 'postgres', application_name: 'someone else' });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1, $2)', [0x64627270, 1]);
      const r = await run('resync', '--pair', PAIR, '--json', '--lock-timeout', '1s');
      expect(r.code).toBe(1);
      expect(r.json().pairs[0].error).toMatch(/app\/main is locked by "someone else" \(from 127\.0\.0\.1, connected .*\); waited 1 s/);
      // Nothing was done to the slave: it still replicates, and the slave's own lock is released.
      expect(await inRecovery(slave)).toBe(true);
      expect(fs.existsSync(lockDir())).toBe(false);
    } finally {
      await other.end();
    }
  });
});

describe('interrupted', () => {
  test('SIGINT in the middle of the copy: the copy stops, the resync is rolled back, the locks released, within seconds', async () => {
    const p = new CliProcess(['resync', '--pair', PAIR, '--json', '-c', file], env);
    await p.waitFor(stepStarted(PAIR, 'slave: pg_basebackup'));
    const t0 = Date.now();
    p.kill('SIGINT');
    const exit = await p.done;
    const took = Date.now() - t0;
    expect(took).toBeLessThan(15_000);
    expect(exit.code).toBe(1);
    expect(exit.stderr).toContain('dbrepl: SIGINT: stopping the running steps and rolling back');
    const pair = JSON.parse(exit.stdout).pairs[0];
    expect(pair.result).toBe('failed');
    expect(pair.error).toMatch(/step "slave: pg_basebackup from the master" failed: cancelled .*the slave's previous data was put back/);
    expect(await copying()).toBe('');
    expect(fs.existsSync(lockDir())).toBe(false);
    // Rolled back to what it was: a standby of the master, replicating.
    await eventually(async () => ((await inRecovery(slave)) ? true : undefined), 20_000, 'the slave to be back in recovery');
    await master.query('INSERT INTO marks DEFAULT VALUES');
    await eventually(async () => (await rows(slave)) === 2, 20_000, 'the new mark on the slave');
    console.log(`SIGINT to exit: ${took} ms`);
  });

  test('SIGKILL in the middle of the copy: nothing keeps copying; the next plan names it; the next apply rolls it back and converges', async () => {
    const p = new CliProcess(['resync', '--pair', PAIR, '--json', '-c', file], env);
    await p.waitFor(stepStarted(PAIR, 'slave: pg_basebackup'));
    p.kill('SIGKILL');
    await p.done;
    // The copy dbrepl started stops with it (its watchdog), not later in the middle of the next run.
    await eventually(async () => ((await copying()) === '' ? true : undefined), 10_000, 'pg_basebackup to stop');
    expect(fs.readFileSync(`${lockDir()}/journal`, 'utf8')).toContain('"phase":"start"');
    const plan = await run('plan', '--json');
    const planned = plan.json().pairs[0];
    expect(planned.interrupted).toMatch(/^interrupted resync of app\/replica at step \d+ of \d+ \(slave: pg_basebackup .*\), started .* by run cli-/);
    expect(planned.warnings.join('\n')).toMatch(/its run is gone \(its process \d+ has ended\): apply rolls it back first/);
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('rollback of the interrupted resync');
    expect(r.json().pairs[0].warnings.join('\n')).toMatch(/rolled back the interrupted resync of app\/replica/);
    expect(fs.existsSync(lockDir())).toBe(false);
    await eventually(async () => ((await inRecovery(slave)) ? true : undefined), 20_000, 'the slave to be back in recovery');
    await master.query('INSERT INTO marks DEFAULT VALUES');
    await eventually(async () => (await rows(slave)) === 3, 20_000, 'the new mark on the slave');
    expect(Number((await slave.query<{ n: string }>('SELECT count(*) AS n FROM big'))[0]!.n)).toBe(100000);
  });
});
