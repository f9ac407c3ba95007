/**
 * Benchmark: enabling a PostgreSQL slave of a ~230 MB database (pgbench -i -s 15) with
 * dbrepl, next to pg_basebackup alone on the same data, measured side by side in one run.
 * Usage: npm run bench:enable [-- ROUNDS]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { PG_BIN, PgCluster, startPostgres } from '../test/support/postgres';

const rounds = Number(process.argv[2] ?? 3);

function timed(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = '/tmp', showSteps = false): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  if (showSteps) console.log(`steps of the last ${label}:\n${r.stderr.split('\n').filter((l) => /^\S+: /.test(l)).join('\n')}`);
  return s;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const password = randomBytes(12).toString('hex');
  const clusters: PgCluster[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-bench-'));
  try {
    const [master, slave] = await Promise.all([startPostgres({ password }), startPostgres({ password })]);
    clusters.push(master, slave);
    const env = { ...process.env, PGPASSWORD: password, PG_PW: password, REPL_PW: randomBytes(12).toString('hex') };
    timed('pgbench -i', `${PG_BIN}/pgbench`, ['-h', '127.0.0.1', '-p', String(master.port), '-U', 'postgres', '-i', '-s', '15', '-q', 'postgres'], env);
    const size = (await master.query<{ s: string }>(`SELECT pg_size_pretty(pg_database_size('postgres')) AS s`))[0]!.s;
    const server = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: '${PG_PW}', service: c.service });
    fs.writeFileSync(path.join(dir, 'replication.yml'), stringify({
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: { app: { servers: { main: server(master), replica: server(slave) } } },
      replications: [{ master: 'app/main', slave: 'app/replica' }],
    }));
    const cli = path.resolve('dist/cli.js');
    const alone: number[] = [];
    const enable: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const target = path.join(dir, `copy-${i}`);
      alone.push(timed('pg_basebackup', `${PG_BIN}/pg_basebackup`, ['-h', '127.0.0.1', '-p', String(master.port), '-U', 'postgres', '-D', target, '-X', 'stream', '-c', 'fast'], env));
      fs.rmSync(target, { recursive: true, force: true });
      const args = i === 0 ? ['apply'] : ['resync', '--pair', 'app/replica'];
      enable.push(timed(`dbrepl ${args[0]}`, process.execPath, [cli, ...args, '-c', path.join(dir, 'replication.yml')], env, '/tmp', i === rounds - 1));
      // Preserved copies are kept by design; remove them so the disk does not fill up.
      for (const f of fs.readdirSync(path.dirname(slave.dataDir))) if (f.includes('.dbrepl-')) fs.rmSync(path.join(path.dirname(slave.dataDir), f), { recursive: true, force: true });
    }
    console.log(`database size: ${size}; rounds: ${rounds}`);
    console.log(`pg_basebackup alone:       ${alone.map((s) => s.toFixed(2)).join(' ')} s (median ${median(alone).toFixed(2)} s)`);
    console.log(`dbrepl enable/resync:      ${enable.map((s) => s.toFixed(2)).join(' ')} s (median ${median(enable).toFixed(2)} s)`);
    console.log(`ratio enable / basebackup: ${(median(enable) / median(alone)).toFixed(2)}`);
  } finally {
    await Promise.all(clusters.map((c) => c.destroy()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
