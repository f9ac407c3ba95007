/**
 * A slave whose master goes away for a moment is `reconnecting`, not broken, and nothing is
 * rebuilt; it counts as broken only once the outage is longer than the pair's resync_after.
 * A divergence is broken at once. Live PostgreSQL, MariaDB and Redis pairs enabled with the
 * CLI; their masters stopped and started with their own service commands.
 *
 * Also: the plan warns about an inactive dbrepl_ slot and the WAL it holds on the master.
 */
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { MariaServer, startMariaDB } from '../support/mariadb';
import { PgCluster, startPostgres } from '../support/postgres';
import { RedisServer, startRedis } from '../support/redis';
import { mariaServer, pgServer, redisServer } from '../support/servers-yaml';
import { dbrepl, scratch, writeYaml } from '../support/dbrepl';
import { eventually, sleep } from '../support/sh';

const REPL = `repl-${randomBytes(10).toString('hex')}`;
const { pool, dir } = scratch('dbrepl-reconnect-', [REPL]);

let pgMain: PgCluster;
let pgReplica: PgCluster;
let myMain: MariaServer;
let myReplica: MariaServer;
let cache: RedisServer;
let cacheReplica: RedisServer;
let env: NodeJS.ProcessEnv;

const PAIRS = ['shop/pg-replica', 'shop/db-replica', 'shop/cache-replica'] as const;

function config(resyncAfter?: string): void {
  const pg = (c: PgCluster) => pgServer(c, 'PG_PW');
  const my = mariaServer;
  const rd = redisServer;
  const extra = resyncAfter ? { resync_after: resyncAfter } : {};
  writeYaml(dir(), {
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
    applications: {
      shop: {
        servers: {
          'pg-main': pg(pgMain), 'pg-replica': pg(pgReplica),
          db: my(myMain, 'MY_MAIN_PW'), 'db-replica': my(myReplica, 'MY_REPLICA_PW'),
          cache: rd(cache, 'CACHE_PW'), 'cache-replica': rd(cacheReplica, 'CACHE_REPLICA_PW'),
        },
      },
    },
    replications: [
      { master: 'shop/pg-main', slave: 'shop/pg-replica', ...extra },
      // Reconnection is the point here, not the copy: the quick dump of small data.
      { master: 'shop/db', slave: 'shop/db-replica', copy: 'logical', ...extra },
      { master: 'shop/cache', slave: 'shop/cache-replica', ...extra },
    ],
  });
}

const run = (...args: string[]) => dbrepl([...args, '-c', path.join(dir(), 'replication.yml')], env);
const status = async (): Promise<any> => (await run('status', '--json')).json();
/** The status once every pair is in `state`. */
const everyPair = (state: string) => eventually(async () => {
  const s = await status();
  return s.pairs.every((p: any) => p.state === state) ? s : undefined;
}, 30_000, `every pair ${state}`);
const byName = (doc: any, key: 'pairs'): Record<string, any> => Object.fromEntries(doc[key].map((p: any) => [p.name, p]));
const masters = () => [pgMain, myMain, cache];

/** Who each slave is: a rebuild or a restart would change it. */
async function slaveIdentities(): Promise<{ pg: string; my: string; redis: string }> {
  const [pg] = await pgReplica.query<{ id: string; started: string }>(`SELECT (SELECT system_identifier::text FROM pg_control_system()) AS id, pg_postmaster_start_time()::text AS started`);
  const [my] = await myReplica.query<any>(`SELECT @@server_id AS id, (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME') AS up`);
  const info = String(await cacheReplica.call('INFO', 'server'));
  return {
    pg: `${pg!.id}@${pg!.started}`,
    // Uptime only grows while the server runs: kept as the start it implies (to the second, give or take one).
    my: `${my.id}@${Math.round(Date.now() / 1000 - Number(my.up))}`,
    redis: /run_id:(\w+)/.exec(info)![1]!,
  };
}

async function preservedCopies(): Promise<string[]> {
  const list = (await run('preserved', 'list', '--json')).json();
  expect(list.errors).toEqual([]);
  return list.copies.map((c: any) => c.path).sort();
}

async function writeOnMasters(tag: string): Promise<void> {
  await pgMain.query('INSERT INTO marks VALUES ($1)', [tag]);
  await myMain.query('INSERT INTO shop.marks VALUES (?)', [tag]);
  await cache.call('SET', `mark:${tag}`, tag);
}

async function onSlaves(tag: string): Promise<boolean> {
  const pg = await pgReplica.query<{ n: number }>('SELECT count(*)::int AS n FROM marks WHERE v = $1', [tag]);
  const my = await myReplica.query<any>('SELECT COUNT(*) AS n FROM shop.marks WHERE v = ?', [tag]);
  return pg[0]!.n === 1 && Number(my[0].n) === 1 && (await cacheReplica.call('GET', `mark:${tag}`)) === tag;
}

beforeAll(async () => {
  const pgPassword = `pg-${randomBytes(8).toString('hex')}`;
  [pgMain, pgReplica, myMain, myReplica, cache, cacheReplica] = await Promise.all([
    pool.add(startPostgres({ password: pgPassword })),
    pool.add(startPostgres({ password: pgPassword })),
    pool.add(startMariaDB()),
    pool.add(startMariaDB({ serverId: 2 })),
    // The master keeps its data over a restart (an RDB at shutdown), so the replica can resume.
    pool.add(startRedis({ settings: { save: '3600 1' } })),
    pool.add(startRedis()),
  ]);
  env = {
    ...process.env,
    PG_PW: pgPassword,
    REPL_PW: REPL,
    MY_MAIN_PW: myMain.password,
    MY_REPLICA_PW: myReplica.password,
    CACHE_PW: cache.password,
    CACHE_REPLICA_PW: cacheReplica.password,
  };
  await pgMain.query('CREATE TABLE marks (v text PRIMARY KEY)');
  await myMain.query('CREATE DATABASE shop');
  await myMain.query('CREATE TABLE shop.marks (v VARCHAR(64) PRIMARY KEY) ENGINE=InnoDB');
  config();
  const r = await run('apply', '--json');
  expect(r.json().pairs.map((p: any) => [p.name, p.result, p.error])).toEqual(PAIRS.map((n) => [n, 'done', null]));
  await writeOnMasters('enabled');
  await eventually(() => onSlaves('enabled'), 30_000, 'the first rows on the slaves');
  await eventually(async () => (await status()).pairs.every((p: any) => p.state === 'replicating'), 30_000, 'all replicating');
});

describe('a master that restarts', () => {
  test('while it is down its slave is reconnecting, and the plan does nothing; back up, it replicates again with no rebuild', async () => {
    const before = await slaveIdentities();
    const copies = await preservedCopies();
    await writeOnMasters('before-stop');
    await eventually(() => onSlaves('before-stop'), 30_000, 'rows before the stop');
    await Promise.all(masters().map((m) => m.stop()));
    try {
      const doc = await everyPair('reconnecting');
      const pairs = byName(doc, 'pairs');
      expect(pairs['shop/pg-replica'].error).toMatch(/^link to the master down for at most \d+s \(since the slave last received WAL\): no WAL receiver is running .*; shop\/pg-main unreachable: .*ECONNREFUSED.*; broken after resync_after 2m$/);
      expect(pairs['shop/db-replica'].error).toMatch(/^link to the master down for at most \d+s \(since the master's last event the slave applied\): (IO thread reconnecting after error \d+: .*|IO thread connecting to the master); shop\/db unreachable: .*; broken after resync_after 2m$/);
      expect(pairs['shop/cache-replica'].error).toMatch(/^link to the master down for \d+s: the replica is reconnecting \(Redis retries every second\); shop\/cache unreachable: .*; broken after resync_after 2m$/);
      // Not a failure of the run (nothing is unreachable that matters), but not as the file wants it either.
      expect((await run('status', '--json')).code).toBe(0);
      expect((await run('status', '--detailed-exitcode')).code).toBe(2);

      const plan = await run('plan', '--json');
      expect(plan.code).toBe(0);
      expect(plan.json().pairs.map((p: any) => [p.name, p.live, p.action, p.error])).toEqual(PAIRS.map((n) => [n, 'reconnecting', 'none', null]));
      expect(plan.json().pairs[0].reason).toMatch(/its link is down .*it counts as broken only after resync_after/);
    } finally {
      await Promise.all(masters().map((m) => m.start()));
    }
    await eventually(async () => (await status()).pairs.every((p: any) => p.state === 'replicating'), 60_000, 'all replicating again');
    await writeOnMasters('after-restart');
    await eventually(() => onSlaves('after-restart'), 30_000, 'rows after the restart');
    expect(await onSlaves('before-stop')).toBe(true);
    // The same slaves, never restarted nor rebuilt, and no copy of previous data made.
    const after = await slaveIdentities();
    expect(after.pg).toBe(before.pg);
    expect(after.redis).toBe(before.redis);
    expect(Math.abs(Number(after.my.split('@')[1]) - Number(before.my.split('@')[1]))).toBeLessThanOrEqual(2);
    expect(await preservedCopies()).toEqual(copies);
  });

  test('down longer than resync_after (1s): broken, and the plan says resync (refused until the master answers)', async () => {
    config('1s');
    try {
      await writeOnMasters('before-long-stop');
      await eventually(() => onSlaves('before-long-stop'), 30_000, 'rows before the long stop');
      await Promise.all(masters().map((m) => m.stop()));
      try {
        const doc = await everyPair('broken');
        for (const p of doc.pairs) expect(p.error).toMatch(/^link to the master down for (at most )?\d+s.*, longer than resync_after 1s: /);
        const plan = await run('plan', '--json');
        expect(plan.code).toBe(1);
        for (const p of plan.json().pairs) {
          expect(p).toMatchObject({ live: 'broken', action: 'resync' });
          expect(p.error).toMatch(/^cannot resync while a side cannot be inspected \(shop\/(pg-main|db|cache) unreachable: /);
        }
      } finally {
        await Promise.all(masters().map((m) => m.start()));
      }
      // Once the master is back the link comes back by itself: replicating, nothing was rebuilt.
      await eventually(async () => (await status()).pairs.every((p: any) => p.state === 'replicating'), 60_000, 'all replicating again');
      await writeOnMasters('after-long-stop');
      await eventually(() => onSlaves('after-long-stop'), 30_000, 'rows after the long stop');
    } finally {
      config();
    }
  });
});

describe('divergence is broken at once, whatever resync_after says', () => {
  test('MariaDB: a row written on the slave, then on the master (1062)', async () => {
    config('1h');
    try {
      await myReplica.query(`INSERT INTO shop.marks VALUES ('conflict')`);
      await myMain.query(`INSERT INTO shop.marks VALUES ('conflict')`);
      const doc = await eventually(async () => {
        const s = await status();
        return byName(s, 'pairs')['shop/db-replica'].state === 'broken' ? s : undefined;
      }, 30_000, 'broken on 1062');
      expect(byName(doc, 'pairs')['shop/db-replica'].error).toMatch(/^SQL thread stopped on error 1062: .*Duplicate entry 'conflict'/);
      expect(byName((await run('plan', '--json')).json(), 'pairs')['shop/db-replica']).toMatchObject({ live: 'broken', action: 'resync', error: null });
    } finally {
      config();
    }
  });

  test('PostgreSQL: the slave down, the plan warns about its slot and the WAL it holds; once the slot is lost, broken at once', async () => {
    const slot = 'dbrepl_shop__pg_replica';
    await pgReplica.stop();
    try {
      // WAL the stopped slave has not received: a segment switch moves the master to the next 16 MiB file.
      await pgMain.query(`INSERT INTO marks SELECT 'wal-' || g FROM generate_series(1, 2000) g`);
      await pgMain.query('SELECT pg_switch_wal()');
      const plan = (await run('plan', '--json')).json();
      const row = byName(plan, 'pairs')['shop/pg-replica'];
      expect(row.live).toBe('unreachable');
      expect(row.warnings).toContainEqual(expect.stringMatching(new RegExp(`^replication slot ${slot} on shop/pg-main \\(this pair's\\) is inactive and holds [\\d.]+ (KiB|MiB) of WAL there, without limit \\(max_slot_wal_keep_size -1\\): the master keeps that WAL until shop/pg-replica streams again$`)));

      // The master may keep only what a slot needs up to 1 MB: the stopped slave's slot is invalidated.
      await pgMain.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`);
      await pgMain.query('SELECT pg_reload_conf()');
      await eventually(async () => {
        await pgMain.query(`INSERT INTO marks VALUES ('more-' || clock_timestamp())`);
        await pgMain.query('SELECT pg_switch_wal()');
        await pgMain.query('CHECKPOINT');
        const [s] = await pgMain.query<{ wal_status: string }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [slot]);
        return s?.wal_status === 'lost';
      }, 30_000, 'the slot lost');
    } finally {
      await pgReplica.start();
    }
    await sleep(500);
    const st = byName(await status(), 'pairs')['shop/pg-replica'];
    expect(st.state).toBe('broken');
    expect(st.error).toBe(`slave cannot follow shop/pg-main again: its replication slot ${slot} on the master is lost (wal_status lost): WAL it still needed was removed (max_slot_wal_keep_size)`);
    expect(byName((await run('plan', '--json')).json(), 'pairs')['shop/pg-replica']).toMatchObject({ live: 'broken', action: 'resync' });

    // apply rebuilds both broken slaves (the master's limit put back first).
    await pgMain.query('ALTER SYSTEM RESET max_slot_wal_keep_size');
    await pgMain.query('SELECT pg_reload_conf()');
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    expect(byName(r.json(), 'pairs')['shop/pg-replica']).toMatchObject({ action: 'resync', result: 'done' });
    expect(byName(r.json(), 'pairs')['shop/db-replica']).toMatchObject({ action: 'resync', result: 'done' });
    await eventually(async () => (await status()).pairs.every((p: any) => p.state === 'replicating'), 60_000, 'all replicating after the rebuilds');
    // The lost slot was not reused: a new one, reserving WAL, that the slave streams from.
    const [again] = await pgMain.query<{ wal_status: string; active: boolean }>('SELECT wal_status, active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    expect(again).toEqual({ wal_status: 'reserved', active: true });
  });
});
