/**
 * Benchmark: a PostgreSQL fleet of 50 pairs, one master with 50 standbys (51 clusters):
 * `dbrepl apply` enabling all 50 (pg_basebackup each), then `dbrepl status`, next to the
 * native way of reading the same state (psql pg_stat_replication / pg_stat_wal_receiver on
 * every server, one after another), measured side by side in one run, with peak memory.
 * Usage: npm run bench:fleet-pg [-- PAIRS]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { cleanUp, runBench } from './bench-common';
import { PG_BIN, PgCluster, startPostgres } from '../test/support/postgres';

const pairs = Number(process.argv[2] ?? 50);

function run(args: string[], env: NodeJS.ProcessEnv): { seconds: number; mb: number; stdout: string } {
  const t0 = Date.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, 'dist/cli.js', ...args], { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = (Date.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`dbrepl ${args[0]} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return { seconds, mb: Number(r.stderr.trim().split('\n').pop()) / 1024, stdout: r.stdout };
}

async function main(): Promise<void> {
  const password = randomBytes(12).toString('hex');
  const clusters: PgCluster[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-bench-fleet-pg-'));
  try {
    const t0 = Date.now();
    // Small servers: 51 clusters on one machine.
    const settings = { shared_buffers: '16MB', max_wal_senders: String(pairs + 5), max_replication_slots: String(pairs + 5), max_connections: '200' };
    for (let i = 0; i <= pairs; i += 4) clusters.push(...(await Promise.all(Array.from({ length: Math.min(4, pairs + 1 - i) }, () => startPostgres({ password, settings })))));
    console.log(`started ${clusters.length} clusters in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const [master, ...slaves] = clusters;
    const server = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, password: '${PG_PW}', service: c.service });
    const file = path.join(dir, 'replication.yml');
    fs.writeFileSync(file, stringify({
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: { app: { servers: { main: server(master!), ...Object.fromEntries(slaves.map((c, i) => [`s${i}`, server(c)])) } } },
      replications: slaves.map((_, i) => ({ master: 'app/main', slave: `app/s${i}` })),
    }));
    const env = { ...process.env, PG_PW: password, REPL_PW: randomBytes(12).toString('hex'), PGPASSWORD: password };
    const apply = run(['apply', '--json', '-c', file], env);
    const done = (JSON.parse(apply.stdout) as { pairs: Array<{ result: string }> }).pairs.filter((p) => p.result === 'done').length;

    const n0 = Date.now();
    for (const c of clusters) {
      const q = c === master ? 'SELECT count(*) FROM pg_stat_replication' : 'SELECT status FROM pg_stat_wal_receiver';
      spawnSync(`${PG_BIN}/psql`, ['-h', c.host, '-p', String(c.port), '-U', 'postgres', '-Atc', q], { env, stdio: 'ignore' });
    }
    const native = (Date.now() - n0) / 1000;
    const rows: Array<[string, number, number | null, string]> = [
      [`dbrepl apply (${pairs} enables)`, apply.seconds, apply.mb, `${done}/${pairs} done`],
      ['psql on each server (sequential)', native, null, '-'],
    ];
    for (const parallel of [4, 16]) {
      const st = run(['status', '--json', '--max-parallel', String(parallel), '-c', file], env);
      const replicating = (JSON.parse(st.stdout) as { pairs: Array<{ state: string }> }).pairs.filter((p) => p.state === 'replicating').length;
      rows.push([`dbrepl status --max-parallel ${parallel}`, st.seconds, st.mb, `${replicating}/${pairs} replicating; ${(st.seconds / native).toFixed(2)}x native`]);
    }
    console.log('| run | seconds | peak MB | result |\n|---|---|---|---|');
    for (const [name, s, mb, what] of rows) console.log(`| ${name} | ${s.toFixed(2)} | ${mb === null ? '-' : mb.toFixed(0)} | ${what} |`);
  } finally {
    await cleanUp(clusters, dir);
  }
}

runBench(main);
