/**
 * Redis engine against live redis-server instances (requirepass, config files) started by
 * test/support/redis.ts: enable within and across applications, read-only slave, a cut
 * link healed by apply, disable, the preserved dataset, cascading.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedisServer, startRedis } from '../support/redis';
import { dbrepl, SECRETS, tempDir, writeYaml } from '../support/dbrepl';
import { eventually, freePort, sh } from '../support/sh';

let master: RedisServer;
let replica: RedisServer;
let dr: RedisServer;
let dir: string;
let env: NodeJS.ProcessEnv;

const server = (s: RedisServer, v: string) => ({ engine: 'redis', host: s.host, port: s.port, password: `\${${v}}`, service: s.service });

function config(drState: 'enabled' | 'disabled' = 'enabled', resyncAfter?: string): void {
  writeYaml(dir, {
    version: 1,
    applications: {
      shop: { servers: { 'redis-main': server(master, 'MASTER_PW'), 'redis-replica': server(replica, 'REPLICA_PW') } },
      'shop-dr': { servers: { redis: server(dr, 'DR_PW') } },
    },
    replications: [
      { master: 'shop/redis-main', slave: 'shop/redis-replica', max_lag: '30s', ...(resyncAfter ? { resync_after: resyncAfter } : {}) },
      { master: 'shop/redis-main', slave: 'shop-dr/redis', state: drState, catchup_timeout: '30s' },
    ],
  });
}
const run = (...args: string[]) => dbrepl([...args, '-c', path.join(dir, 'replication.yml')], env);

beforeAll(async () => {
  [master, replica, dr] = await Promise.all([startRedis(), startRedis(), startRedis()]);
  for (const s of [master, replica, dr]) SECRETS.add(s.password);
  dir = tempDir('dbrepl-redis-');
  env = { ...process.env, MASTER_PW: master.password, REPLICA_PW: replica.password, DR_PW: dr.password };
  await master.call('SET', 'order:1', 'before enable');
  await replica.call('SET', 'old:replica', 'kept');
  config();
});

afterAll(async () => {
  await Promise.all([master, replica, dr].filter(Boolean).map((s) => s.destroy()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('redis replication', () => {
  let preserved: string;

  test('plan: both slaves to enable', async () => {
    const r = await run('plan', '--json', '--detailed-exitcode');
    expect(r.code).toBe(2);
    const plan = r.json();
    expect(plan.pairs.map((p: any) => [p.name, p.live, p.action])).toEqual([
      ['shop/redis-replica', 'standalone', 'enable'],
      ['shop-dr/redis', 'standalone', 'enable'],
    ]);
    expect(plan.pairs[0].preserved).toMatch(new RegExp(`^${replica.base}/dump\\.dbrepl-\\d{8}T\\d{9}Z\\.rdb$`));
  });

  test('apply: a key written on the master is read on both slaves; a write on a slave is refused', async () => {
    const r = await run('apply', '--json');
    expect(r.stderr).not.toMatch(/failed/);
    expect(r.code).toBe(0);
    expect(r.json().pairs.map((p: any) => [p.result, p.error])).toEqual([['done', null], ['done', null]]);
    preserved = r.json().pairs[0].preserved;
    await master.call('SET', 'order:2', 'after enable');
    for (const s of [replica, dr]) {
      await eventually(async () => (await s.call('GET', 'order:2')) === 'after enable', 10_000, 'key on slave');
      expect(await s.call('GET', 'order:1')).toBe('before enable');
      await expect(s.call('SET', 'x', 'y')).rejects.toThrow(/READONLY/);
    }
    expect(await replica.call('GET', 'old:replica')).toBeNull();
    // Persisted: the config file now says it is a replica, with its auth.
    const conf = fs.readFileSync(replica.configFile, 'utf8');
    expect(conf).toMatch(new RegExp(`^replicaof 127\\.0\\.0\\.1 ${master.port}$`, 'm'));
    expect(conf).toMatch(/^masterauth /m);
  });

  test("the slave's previous dataset is on disk at `preserved`", async () => {
    expect(fs.statSync(preserved).size).toBeGreaterThan(0);
    const check = await sh('redis-check-rdb', [preserved]);
    expect(check.stdout).toMatch(/RDB looks OK/);
    // Load it into a throwaway server and read the old key back.
    const port = await freePort();
    const tmp = tempDir('dbrepl-rdb-');
    fs.copyFileSync(preserved, path.join(tmp, 'dump.rdb'));
    await sh('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', tmp, '--dbfilename', 'dump.rdb', '--daemonize', 'yes', '--pidfile', path.join(tmp, 'pid'), '--save', '']);
    try {
      const v = await eventually(async () => (await sh('redis-cli', ['-p', String(port), 'GET', 'old:replica'])).stdout.trim(), 10_000, 'old key');
      expect(v).toBe('kept');
    } finally {
      await sh('redis-cli', ['-p', String(port), 'shutdown', 'nosave'], { allowFail: true });
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('status replicating; env for both applications; a restart keeps it a slave', async () => {
    const s = (await run('status', '--json')).json();
    expect(s.pairs.map((p: any) => p.state)).toEqual(['replicating', 'replicating']);
    expect(s.pairs[0].lag_bytes).toBeGreaterThanOrEqual(0);
    expect((await run('env', '--format', 'json')).json()).toEqual({
      shop: { REDIS_ADDRESS: '127.0.0.1', REDIS_PORT: String(master.port), REDIS_SLAVE_ADDRESSES: `127.0.0.1:${dr.port},127.0.0.1:${replica.port}` },
      'shop-dr': { REDIS_ADDRESS: '127.0.0.1', REDIS_PORT: String(dr.port), REDIS_SLAVE_ADDRESSES: '' },
    });
    await replica.stop();
    await replica.start();
    await eventually(async () => (await replica.info()).master_link_status === 'up', 10_000, 'link after restart');
    expect((await run('plan', '--json', '--detailed-exitcode')).code).toBe(0);
  });

  test('a slave cut from its master (CLIENT KILL TYPE master, link held down) is reconnecting, broken after resync_after, and apply heals it', async () => {
    // Point it at the master but refuse its auth: the link stays down until apply sets it right.
    await replica.call('CONFIG', 'SET', 'masterauth', 'wrong-password');
    await replica.call('CLIENT', 'KILL', 'TYPE', 'master');
    // Redis gives no reason for a link that is down: a blip until resync_after (default 2m).
    const blip = await eventually(async () => {
      const s = (await run('status', '--json')).json();
      return s.pairs[0].state === 'reconnecting' ? s : undefined;
    }, 15_000, 'reconnecting');
    expect(blip.pairs[0].error).toMatch(/^link to the master down for \d+s: .*; broken after resync_after 2m$/);
    expect((await run('plan', '--json')).json().pairs[0]).toMatchObject({ live: 'reconnecting', action: 'none' });
    config('enabled', '1s');
    try {
      const st = await eventually(async () => {
        const s = (await run('status', '--json')).json();
        return s.pairs[0].state === 'broken' ? s : undefined;
      }, 15_000, 'broken');
      expect(st.pairs[0].error).toMatch(/^link to the master down for \d+s, longer than resync_after 1s: /);
      expect((await run('plan', '--json')).json().pairs[0]).toMatchObject({ live: 'broken', action: 'resync' });
      await master.call('SET', 'order:3', 'while broken');
      const syncsBefore = Number(String(await master.call('INFO', 'stats')).match(/sync_full:(\d+)/)![1]);
      const r = await run('apply', '--json');
      expect(r.json().pairs[0]).toMatchObject({ action: 'resync', result: 'done', error: null });
      expect(r.code).toBe(0);
      expect(await replica.call('GET', 'order:3')).toBe('while broken');
      const syncsAfter = Number(String(await master.call('INFO', 'stats')).match(/sync_full:(\d+)/)![1]);
      expect(syncsAfter).toBe(syncsBefore + 1); // re-attached with a full sync
    } finally {
      config();
    }
  });

  test('a slave whose master stopped is reconnecting, not broken, and replicates again once it is back', async () => {
    await master.stop();
    try {
      const st = await eventually(async () => {
        const s = (await run('status', '--json')).json();
        return s.pairs[0].state === 'reconnecting' ? s : undefined;
      }, 10_000, 'reconnecting to a stopped master');
      expect(st.pairs[0].error).toMatch(/shop\/redis-main unreachable/);
      expect((await run('plan', '--json')).json().pairs[0]).toMatchObject({ live: 'reconnecting', action: 'none', error: null });
      const info = await replica.info();
      expect(info.master_link_status).toBe('down');
    } finally {
      await master.start();
    }
    await eventually(async () => (await run('status', '--json')).json().pairs[0].state === 'replicating', 20_000, 'link back');
  });

  test('disable: the slave is writable, its data complete, persisted', async () => {
    for (let i = 0; i < 200; i++) await master.call('SET', `bulk:${i}`, String(i));
    config('disabled');
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    expect(r.json().pairs[1]).toMatchObject({ action: 'disable', result: 'done' });
    expect(await dr.call('GET', 'bulk:199')).toBe('199');
    expect(await dr.call('DBSIZE')).toBe(await master.call('DBSIZE'));
    await dr.call('SET', 'written:on:dr', 'yes');
    expect((await dr.info()).role).toBe('master');
    expect(fs.readFileSync(dr.configFile, 'utf8')).not.toMatch(/^replicaof /m);
    expect(r.json().env.shop.REDIS_SLAVE_ADDRESSES).toBe(`127.0.0.1:${replica.port}`);
  });
});

describe('redis cascading', () => {
  test('A -> B -> C: a key written on A reaches C', async () => {
    const [a, b, c] = await Promise.all([startRedis(), startRedis(), startRedis()]);
    try {
      for (const s of [a, b, c]) SECRETS.add(s.password);
      const file = writeYaml(dir, {
        version: 1,
        applications: { app: { servers: { a: server(a, 'A'), b: server(b, 'B'), c: server(c, 'C') } } },
        replications: [
          { master: 'app/b', slave: 'app/c' },
          { master: 'app/a', slave: 'app/b' },
        ],
      }, 'cascade.yml');
      const cenv = { ...process.env, A: a.password, B: b.password, C: c.password };
      const r = await dbrepl(['apply', '--json', '-c', file], cenv);
      expect(r.code).toBe(0);
      await a.call('SET', 'chain', 'through b');
      await eventually(async () => (await c.call('GET', 'chain')) === 'through b', 10_000, 'key on C');
      expect((await dbrepl(['status', '--json', '-c', file], cenv)).json().pairs.map((p: any) => p.state)).toEqual(['replicating', 'replicating']);
      expect(r.json().env.app.REDIS_SLAVE_ADDRESSES).toBe(`127.0.0.1:${b.port},127.0.0.1:${c.port}`);
    } finally {
      await Promise.all([a, b, c].map((s) => s.destroy()));
    }
  });
});
