/**
 * Fleets for `dbrepl status`: a Redis fleet (masters with replicas each, replication set up
 * with REPLICAOF) and a PostgreSQL fleet (one master with N standbys, enabled by `dbrepl
 * apply`), each next to the native way of reading the same state: one client command per
 * server, one after another.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { dbrepl, keep, Ran, secret, Servers, sleep } from './bench-common';
import { PG_BIN, PgCluster, startPostgres } from '../test/support/postgres';
import { startRedis } from '../test/support/redis';

export interface StatusRun {
  parallel: number;
  seconds: number;
  peakMb: number;
  /** Pairs `status --json` says replicate, of all. */
  replicating: number;
  pairs: number;
}

export interface Fleet {
  servers: number;
  pairs: number;
  /** Starting the servers and setting up replication. */
  setUpSeconds: number;
  /** The native loop over every server. */
  nativeSeconds: number;
  status: StatusRun[];
  /** PostgreSQL: the `dbrepl apply` that enabled every standby. */
  apply?: Ran & { done: number };
}

async function statusRuns(file: string, env: NodeJS.ProcessEnv, parallels: number[]): Promise<StatusRun[]> {
  const runs: StatusRun[] = [];
  for (const parallel of parallels) {
    const r = await dbrepl(['status', '--json', '--max-parallel', String(parallel)], file, env);
    const pairs = (JSON.parse(r.stdout) as { pairs: Array<{ state: string }> }).pairs;
    runs.push({ parallel, seconds: r.seconds, peakMb: r.peakMb!, replicating: pairs.filter((p) => p.state === 'replicating').length, pairs: pairs.length });
  }
  return runs;
}

/** One client command per server, one after another (what a script would do), in seconds. */
function nativeLoop(commands: Array<[string, string[]]>, env: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  for (const [cmd, args] of commands) spawnSync(cmd, args, { env, stdio: 'ignore' });
  return (performance.now() - t0) / 1000;
}

const writeFile = (dir: string, doc: object): string => {
  const file = path.join(dir, 'replication.yml');
  fs.writeFileSync(file, stringify({ version: 1, ...doc }));
  return file;
};

/** MASTERS Redis masters with PER replicas each (MASTERS × PER pairs); native: redis-cli INFO replication on each server. */
export async function redisFleet(servers: Servers, dir: string, masters: number, per: number, parallels: number[]): Promise<Fleet> {
  const password = secret(randomBytes(12).toString('hex'));
  const t0 = performance.now();
  const apps: Record<string, { servers: Record<string, unknown> }> = {};
  const pairs: Array<Record<string, string>> = [];
  const all: Array<{ host: string; port: number }> = [];
  for (let i = 0; i < masters; i++) {
    const group = await Promise.all(Array.from({ length: per + 1 }, () => keep(servers, startRedis({ password }))));
    all.push(...group);
    const [m, ...replicas] = group;
    apps[`app${i}`] = { servers: Object.fromEntries(group.map((s, j) => [j === 0 ? 'main' : `r${j}`, { engine: 'redis', host: s.host, port: s.port, password: '${FLEET_PW}' }])) };
    await Promise.all(
      replicas.map(async (r, j) => {
        await r.call('CONFIG', 'SET', 'masterauth', password);
        await r.call('REPLICAOF', m!.host, String(m!.port));
        pairs.push({ master: `app${i}/main`, slave: `app${i}/r${j + 1}` });
      }),
    );
  }
  await sleep(3000);
  const setUpSeconds = (performance.now() - t0) / 1000;
  const file = writeFile(dir, { applications: apps, replications: pairs });
  const env = { ...process.env, FLEET_PW: password, REDISCLI_AUTH: password };
  const nativeSeconds = nativeLoop(all.map((s) => ['redis-cli', ['-h', s.host, '-p', String(s.port), '--no-auth-warning', 'INFO', 'replication']]), env);
  return { servers: all.length, pairs: pairs.length, setUpSeconds, nativeSeconds, status: await statusRuns(file, env, parallels) };
}

/** One PostgreSQL master with PAIRS standbys enabled by `dbrepl apply`; native: psql pg_stat_replication / pg_stat_wal_receiver on each server. */
export async function pgFleet(servers: Servers, dir: string, pairs: number, parallels: number[]): Promise<Fleet> {
  const password = secret(randomBytes(12).toString('hex'));
  const t0 = performance.now();
  const clusters: PgCluster[] = [];
  // Small servers: PAIRS + 1 clusters on one machine.
  const settings = { shared_buffers: '16MB', max_wal_senders: String(pairs + 5), max_replication_slots: String(pairs + 5), max_connections: '200' };
  for (let i = 0; i <= pairs; i += 4) clusters.push(...(await Promise.all(Array.from({ length: Math.min(4, pairs + 1 - i) }, () => keep(servers, startPostgres({ password, settings }))))));
  const [master, ...slaves] = clusters;
  const server = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, password: '${PG_PW}', service: c.service });
  const file = writeFile(dir, {
    defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
    applications: { app: { servers: { main: server(master!), ...Object.fromEntries(slaves.map((c, i) => [`s${i}`, server(c)])) } } },
    replications: slaves.map((_, i) => ({ master: 'app/main', slave: `app/s${i}` })),
  });
  const env = { ...process.env, PG_PW: password, REPL_PW: secret(randomBytes(12).toString('hex')), PGPASSWORD: password };
  const apply = await dbrepl(['apply', '--json'], file, env);
  const done = (JSON.parse(apply.stdout) as { pairs: Array<{ result: string }> }).pairs.filter((p) => p.result === 'done').length;
  const setUpSeconds = (performance.now() - t0) / 1000;
  const nativeSeconds = nativeLoop(
    clusters.map((c) => [`${PG_BIN}/psql`, ['-h', c.host, '-p', String(c.port), '-U', 'postgres', '-Atc', c === master ? 'SELECT count(*) FROM pg_stat_replication' : 'SELECT status FROM pg_stat_wal_receiver']]),
    env,
  );
  return { servers: clusters.length, pairs, setUpSeconds, nativeSeconds, status: await statusRuns(file, env, parallels), apply: { ...apply, done } };
}
