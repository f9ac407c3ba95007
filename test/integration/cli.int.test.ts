/**
 * The CLI as a scheduled job and an operator drive it, against live PostgreSQL, MariaDB and
 * Redis servers: `status --detailed-exitcode` (0 healthy, 2 not as the file wants it, 1
 * error) with one JSON document on stdout for every outcome; progress of each copy named by
 * its pair; the copies of previous data listed by `status` and `preserved list`, and removed
 * by `preserved remove` only with --yes, never the newest, never a path dbrepl did not make.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { MariaServer, startMariaDB } from '../support/mariadb';
import { PgCluster, startPostgres } from '../support/postgres';
import { RedisServer, startRedis } from '../support/redis';
import { mariaServer, pgServer, redisServer } from '../support/servers-yaml';
import { dbrepl, scratch, stateDirOf, writeYaml } from '../support/dbrepl';
import { eventually } from '../support/sh';

const REPL = `repl-${randomBytes(10).toString('hex')}`;
const { pool, dir } = scratch('dbrepl-cli-', [REPL]);

let pgMain: PgCluster;
let pgReplica: PgCluster;
let myMain: MariaServer;
let myReports: MariaServer;
let cache: RedisServer;
let reportsCache: RedisServer;
let env: NodeJS.ProcessEnv;

function config(opts: { pgState?: 'enabled' | 'disabled' } = {}): void {
  const pg = (c: PgCluster) => pgServer(c, 'PG_PW');
  const my = mariaServer;
  const rd = redisServer;
  writeYaml(dir(), {
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
    applications: {
      shop: { servers: { 'pg-main': pg(pgMain), 'pg-replica': pg(pgReplica), db: my(myMain, 'MY_MAIN_PW'), cache: rd(cache, 'CACHE_PW') } },
      reports: { servers: { db: my(myReports, 'MY_REPORTS_PW'), cache: rd(reportsCache, 'REPORTS_CACHE_PW') } },
    },
    replications: [
      { master: 'shop/pg-main', slave: 'shop/pg-replica', state: opts.pgState ?? 'enabled' },
      { master: 'shop/db', slave: 'reports/db' },
      { master: 'shop/cache', slave: 'reports/cache' },
    ],
  });
}

const run = (...args: string[]) => dbrepl([...args, '-c', path.join(dir(), 'replication.yml')], env);

/** Exactly one JSON document on stdout, whatever the outcome. */
function oneDocument(stdout: string): any {
  const doc = JSON.parse(stdout);
  expect(typeof doc).toBe('object');
  return doc;
}

beforeAll(async () => {
  const pgPassword = `pg-${randomBytes(8).toString('hex')}`;
  [pgMain, pgReplica, myMain, myReports, cache, reportsCache] = await Promise.all([
    pool.add(startPostgres({ password: pgPassword })),
    pool.add(startPostgres({ password: pgPassword })),
    pool.add(startMariaDB()),
    pool.add(startMariaDB()),
    pool.add(startRedis()),
    pool.add(startRedis()),
  ]);
  env = {
    ...process.env,
    PG_PW: pgPassword,
    REPL_PW: REPL,
    MY_MAIN_PW: myMain.password,
    MY_REPORTS_PW: myReports.password,
    CACHE_PW: cache.password,
    REPORTS_CACHE_PW: reportsCache.password,
    // Progress every 100 ms, so these small copies show their meters.
    DBREPL_PROGRESS_INTERVAL: '100ms',
  };
  // Enough data that each copy takes a measurable moment.
  await pgMain.query(`CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 16) AS v FROM generate_series(1, 60000) g`);
  await myMain.query('CREATE DATABASE shop');
  await myMain.query(`CREATE TABLE shop.big (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB`);
  await myMain.query(`INSERT INTO shop.big SELECT seq, REPEAT(MD5(seq), 16) FROM mysql.seq_1_to_20000`);
  await cache.call('EVAL', "for i=1,20000 do redis.call('SET', 'key:' .. i, string.rep('x', 256)) end", 0);
  await reportsCache.call('SET', 'reports-own', 'kept in the copy');
  // A database of its own: the MariaDB slave's data is dumped (and kept) before the copy replaces it.
  await myReports.query('CREATE DATABASE reports_own');
  config();
});

describe('status --detailed-exitcode for a scheduled job', () => {
  test('before any apply: every pair standalone while enabled -> 2, with the pairs and why', async () => {
    const r = await run('status', '--detailed-exitcode', '--json');
    expect(r.code).toBe(2);
    const doc = oneDocument(r.stdout);
    expect(doc.pairs.map((p: any) => [p.name, p.desired, p.state])).toEqual([
      ['shop/pg-replica', 'enabled', 'standalone'],
      ['reports/db', 'enabled', 'standalone'],
      ['reports/cache', 'enabled', 'standalone'],
    ]);
    // Without the flag, a status that ran is a success.
    expect((await run('status')).code).toBe(0);
  });

  test('apply: progress lines name their pair, with bytes, total, rate and ETA', async () => {
    // Redis's own testing knob: 100 µs per key makes the full sync take ~2 s, long enough to be seen under way.
    await cache.call('CONFIG', 'SET', 'rdb-key-save-delay', '100');
    const r = await run('apply').finally(() => cache.call('CONFIG', 'SET', 'rdb-key-save-delay', '0'));
    expect(r.code).toBe(0);
    const lines = r.stderr.split('\n');
    // pg_basebackup's meter, read and said again: done of ~total (percent), rate, ETA.
    expect(lines.some((l) => /^shop\/pg-replica: copy [\d.]+ (B|KiB|MiB) of [\d.]+ MiB \(\d+%\), [\d.]+ (B|KiB|MiB)\/s(, ETA [\d.]+ s)?$/.test(l))).toBe(true);
    // The end of every copy: what went through, in how long (the MariaDB dump measured in the pipe).
    const finished = (pair: string) => lines.find((l) => l.startsWith(`${pair}: `) && l.includes(' finished: '));
    for (const pair of ['shop/pg-replica', 'reports/db']) expect(finished(pair)).toMatch(/finished: [\d.]+ MiB in [\d.]+ s/);
    // Redis: master_sync_read_bytes as it grows.
    expect(lines.some((l) => /^reports\/cache: full sync [\d.]+ (B|KiB|MiB)( of ~?[\d.]+ MiB \(\d+%\))?, [\d.]+ (B|KiB|MiB)\/s/.test(l))).toBe(true);
    expect(finished('reports/cache')).toMatch(/^reports\/cache: full sync finished: [\d.]+ (KiB|MiB) in [\d.]+ s/);
    expect(r.stdout).toMatch(/Apply: 3 done, 0 failed, 0 skipped, 0 already as desired\./);
  });

  test('after apply: all replicating -> 0; the words for pairs with nothing to do', async () => {
    await eventually(async () => ((await run('status', '--detailed-exitcode')).code === 0 ? true : undefined), 30_000, 'status 0');
    const again = await run('apply');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/Apply: 0 done, 0 failed, 0 skipped, 3 already as desired\./);
    expect(again.stdout).toContain('[already as desired]');
    expect(again.stdout).not.toContain('[skipped]');
  });

  test('the file says disabled, the pair still replicates -> 2, named in the text', async () => {
    config({ pgState: 'disabled' });
    try {
      const r = await run('status', '--detailed-exitcode');
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/shop\/pg-replica: .* replicating, .*\[not as the file wants: not following this master\]/);
    } finally {
      config();
    }
  });

  test('a server down: exit 1 (an error, not drift), still one JSON document', async () => {
    await reportsCache.stop();
    try {
      const r = await run('status', '--detailed-exitcode', '--json');
      expect(r.code).toBe(1);
      const doc = oneDocument(r.stdout);
      expect(doc.pairs.find((p: any) => p.name === 'reports/cache')).toMatchObject({ state: 'unreachable', error: expect.stringContaining('reports/cache') });
    } finally {
      await reportsCache.start();
    }
  });
});

describe('preserved copies', () => {
  let pgCopies: string[];

  test("a resync keeps a second copy; status and preserved list show each server's copies, newest marked", async () => {
    const r = await run('resync', '--pair', 'shop/pg-replica', '--json');
    expect(r.code).toBe(0);
    const status = oneDocument((await run('status', '--json')).stdout);
    const list = oneDocument((await run('preserved', 'list', '--json')).stdout);
    expect(list.errors).toEqual([]);
    // The same copies; their age is read by each command at its own moment (a second boundary may fall between).
    const ageless = (cs: any[]) => cs.map(({ age_seconds: _age, ...c }) => c);
    expect(ageless(list.copies)).toEqual(ageless(status.preserved));
    list.copies.forEach((c: any, i: number) => expect(Math.abs(c.age_seconds - status.preserved[i].age_seconds)).toBeLessThanOrEqual(2));
    const of = (server: string) => list.copies.filter((c: any) => c.server === server);
    pgCopies = of('shop/pg-replica').map((c: any) => c.path);
    expect(pgCopies).toHaveLength(2);
    for (const p of pgCopies) expect(p).toMatch(new RegExp(`^${pgReplica.dataDir}\\.dbrepl-\\d{8}T\\d{9}Z$`));
    expect(of('shop/pg-replica').map((c: any) => c.newest)).toEqual([false, true]);
    expect(of('reports/db')).toEqual([expect.objectContaining({ newest: true, path: expect.stringMatching(/\.dbrepl-\d{8}T\d{9}Z\.sql\.gz$/) })]);
    expect(of('reports/cache')).toEqual([expect.objectContaining({ newest: true, path: expect.stringMatching(/\.dbrepl-\d{8}T\d{9}Z\.rdb$/) })]);
    for (const c of list.copies) {
      expect(c.bytes).toBeGreaterThan(0);
      expect(c.age_seconds).toBeGreaterThanOrEqual(0);
      expect(fs.existsSync(c.path)).toBe(true);
    }
    const text = (await run('status')).stdout;
    expect(text).toContain('Preserved copies of previous data');
    expect(text).toMatch(new RegExp(`${pgCopies[1]!.replace(/[.]/g, '\\.')}  [\\d.]+ (KiB|MiB), \\d+s old \\(newest: kept\\)`));
  });

  test("things that look like copies but are not dbrepl's are not listed", async () => {
    // A link with a copy's name (to a directory that must survive), and a file where a directory is expected.
    fs.symlinkSync('/etc', `${pgReplica.dataDir}.dbrepl-20200101T000000000Z`);
    fs.writeFileSync(`${pgReplica.dataDir}.dbrepl-20200102T000000000Z`, 'not a data directory');
    fs.mkdirSync(`${pgReplica.dataDir}.dbrepl-yesterday`);
    const list = oneDocument((await run('preserved', 'list', '--json')).stdout);
    expect(list.copies.filter((c: any) => c.server === 'shop/pg-replica').map((c: any) => c.path)).toEqual(pgCopies);
  });

  test('remove without --yes removes nothing and says what it would remove; never the newest', async () => {
    const r = await run('preserved', 'remove', '--older-than', '0s');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`would remove ${pgCopies[0]}`);
    expect(r.stdout).toContain('Nothing removed: run again with --yes');
    // Each of the other servers has one copy, its newest: not a candidate.
    expect(r.stdout.match(/would remove/g)).toHaveLength(1);
    for (const p of pgCopies) expect(fs.existsSync(p)).toBe(true);
  });

  test('remove refuses the newest copy and any path dbrepl did not make; exit 1, nothing touched', async () => {
    const planted = `${pgReplica.dataDir}.dbrepl-20200101T000000000Z`;
    const r = await run('preserved', 'remove', '--yes', '--json', pgCopies[1]!, planted, '/etc');
    expect(r.code).toBe(1);
    const doc = oneDocument(r.stdout);
    expect(doc.removed).toEqual([]);
    expect(doc.refused.map((x: any) => x.path)).toEqual([pgCopies[1], planted, '/etc']);
    expect(doc.refused[0].error).toContain('newest copy of shop/pg-replica is kept');
    expect(doc.refused[1].error).toContain('not a copy dbrepl made');
    expect(fs.lstatSync(planted).isSymbolicLink()).toBe(true);
    expect(fs.existsSync('/etc/passwd')).toBe(true);
    expect(fs.existsSync(pgCopies[1]!)).toBe(true);
  });

  test('a lock on the server (a run under way, or one that left work to finish) stops the removal there', async () => {
    // Another run's lock, held by a live process of this machine (this test's own).
    const dir = stateDirOf('postgresql', pgReplica.port);
    fs.mkdirSync(`${dir}/lock`, { recursive: true, mode: 0o700 });
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const pidStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    fs.writeFileSync(
      `${dir}/lock/owner`,
      JSON.stringify({ run: 'other-run', token: 'x', host: 'here', machine: fs.readFileSync('/etc/machine-id', 'utf8').trim(), boot: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), pid: process.pid, pidStart, since: new Date().toISOString() }),
    );
    fs.writeFileSync(`${dir}/lock/heartbeat`, '');
    try {
      const r = await run('preserved', 'remove', '--older-than', '0s', '--yes', '--json');
      expect(r.code).toBe(1);
      const doc = oneDocument(r.stdout);
      expect(doc.removed).toEqual([]);
      expect(doc.failed).toEqual([expect.objectContaining({ path: pgCopies[0], error: expect.stringContaining(`shop/pg-replica is locked by run other-run (pid ${process.pid}`) })]);
      expect(fs.existsSync(pgCopies[0]!)).toBe(true);
    } finally {
      fs.rmSync(`${dir}/lock`, { recursive: true, force: true });
    }
  });

  test('remove --older-than --yes removes the old copy; the newest stays; the slave still replicates', async () => {
    const r = await run('preserved', 'remove', '--older-than', '0s', '--yes', '--json');
    expect(r.code).toBe(0);
    const doc = oneDocument(r.stdout);
    expect(doc.removed.map((c: any) => c.path)).toEqual([pgCopies[0]]);
    expect(fs.existsSync(pgCopies[0]!)).toBe(false);
    expect(fs.existsSync(pgCopies[1]!)).toBe(true);
    const left = oneDocument((await run('preserved', 'list', '--json')).stdout);
    expect(left.copies.filter((c: any) => c.server === 'shop/pg-replica').map((c: any) => c.path)).toEqual([pgCopies[1]]);
    expect((await run('status', '--detailed-exitcode')).code).toBe(0);
  });
});
