/**
 * Benchmark: enabling a PostgreSQL slave of a ~230 MB database (pgbench -i -s 15) with
 * dbrepl, next to the same rebuild done by hand with the native tools (stop, move aside,
 * pg_basebackup -X stream -R -S <slot>, its own configuration files back, start, wait until
 * it streams) and to pg_basebackup alone, measured side by side in one run, `sync` before
 * each (a copy that starts while the previous one is still being flushed is slower).
 * Usage: npm run bench:enable [-- ROUNDS [PGBENCH_SCALE]]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { cleanUp, runBench } from './bench-common';
import { PG_BIN, PgCluster, startPostgres } from '../test/support/postgres';

const rounds = Number(process.argv[2] ?? 3);
/** pgbench scale: 15 is ~230 MB, 40 ~600 MB (the size the issue measured). */
const scale = Number(process.argv[3] ?? 15);

function timed(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = '/tmp', showSteps = false): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  if (showSteps) console.log(`steps of the last ${label}:\n${r.stderr.split('\n').filter((l) => /^\S+: /.test(l)).join('\n')}`);
  return s;
}

/** The same, printing each log line of the run with the seconds since it started (where the time goes). */
function timedStamped(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const since = (): string => (Number(process.hrtime.bigint() - t0) / 1e9).toFixed(2).padStart(6);
    const child = spawn(cmd, args, { env, cwd: '/tmp' });
    const lines: string[] = [];
    let rest = '';
    child.stderr.on('data', (c: Buffer) => {
      const parts = (rest + c.toString()).split('\n');
      rest = parts.pop()!;
      for (const l of parts) lines.push(`${since()}  ${l}`);
    });
    child.stdout.resume();
    child.on('close', (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`${label} failed (${code}): ${lines.join('\n')}`));
      console.log(`the last ${label}, each log line with the seconds since it started:\n${lines.join('\n')}\n${s.toFixed(2).padStart(6)}  (exit)`);
      resolve(s);
    });
  });
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
    timed('pgbench -i', `${PG_BIN}/pgbench`, ['-h', '127.0.0.1', '-p', String(master.port), '-U', 'postgres', '-i', '-s', String(scale), '-q', 'postgres'], env);
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
    const byHand: number[] = [];
    const sync = (): void => void spawnSync('sync');
    const clean = (): void => {
      // Preserved copies are kept by design; remove them so the disk does not fill up.
      for (const f of fs.readdirSync(path.dirname(slave.dataDir))) if (f.includes('.dbrepl-') || f.includes('.byhand-')) fs.rmSync(path.join(path.dirname(slave.dataDir), f), { recursive: true, force: true });
    };
    // The same rebuild by hand: what an operator's script does, as root, with the native tools.
    const own = ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf'].filter((f) => fs.existsSync(path.join(slave.dataDir, f)));
    const handScript = `set -e
${slave.service.stop}
mv -- "$D" "$D.byhand-$N"
mkdir -m 700 -- "$D" && chown postgres: -- "$D"
runuser -u postgres -- env PGPASSWORD="$REPL_PW" ${PG_BIN}/pg_basebackup -h 127.0.0.1 -p ${master.port} -U replicator -D "$D" -X stream -R -S dbrepl_app__replica -c fast
for f in ${own.join(' ')}; do cp -p -- "$D.byhand-$N/$f" "$D/$f"; done
${slave.service.start}
until [ "$(runuser -u postgres -- ${PG_BIN}/psql -h 127.0.0.1 -p ${slave.port} -U postgres -Atc "SELECT status FROM pg_stat_wal_receiver")" = streaming ]; do sleep 0.02; done`;
    for (let i = 0; i < rounds; i++) {
      const target = path.join(dir, `copy-${i}`);
      sync();
      alone.push(timed('pg_basebackup', `${PG_BIN}/pg_basebackup`, ['-h', '127.0.0.1', '-p', String(master.port), '-U', 'postgres', '-D', target, '-X', 'stream', '-c', 'fast'], env));
      fs.rmSync(target, { recursive: true, force: true });
      const args = i === 0 ? ['apply'] : ['resync', '--pair', 'app/replica'];
      sync();
      const dbreplArgs = [cli, ...args, '-c', path.join(dir, 'replication.yml')];
      enable.push(i === rounds - 1 ? await timedStamped(`dbrepl ${args[0]}`, process.execPath, dbreplArgs, env) : timed(`dbrepl ${args[0]}`, process.execPath, dbreplArgs, env));
      clean();
      if (i === 0) continue;
      sync();
      byHand.push(timed('by hand', '/bin/sh', ['-c', handScript], { ...env, D: slave.dataDir, N: String(i) }));
      clean();
    }
    console.log(`database size: ${size}; rounds: ${rounds}`);
    console.log(`pg_basebackup alone:       ${alone.map((s) => s.toFixed(2)).join(' ')} s (median ${median(alone).toFixed(2)} s)`);
    console.log(`dbrepl enable/resync:      ${enable.map((s) => s.toFixed(2)).join(' ')} s (median ${median(enable).toFixed(2)} s)`);
    console.log(`ratio enable / basebackup: ${(median(enable) / median(alone)).toFixed(2)}`);
    console.log(`by hand (native tools):    ${byHand.map((s) => s.toFixed(2)).join(' ')} s (median ${median(byHand).toFixed(2)} s)`);
    console.log(`ratio dbrepl / by hand:    ${(median(enable.slice(1)) / median(byHand)).toFixed(2)} (resync rounds only)`);
  } finally {
    await cleanUp(clusters, dir);
  }
}

runBench(main);
