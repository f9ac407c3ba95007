/**
 * `npm run bench`: the native procedure and dbrepl side by side on the same servers and data
 * in one run, for every engine, printed as one table (also written to
 * /tmp/dbrepl-bench-table.md). During every timed run of PostgreSQL, MariaDB and Redis a
 * writer on the master writes in a loop through its own connection: the table shows its
 * longest wait (ms) and its failed writes, for the dbrepl run and for the native one.
 *
 * Sizes, from the environment (defaults keep the run near 10 minutes on 2 cores):
 *   BENCH_PG_SCALE=40            pgbench scale of the PostgreSQL row (~600 MB)
 *   BENCH_MY_ROWS=800000         rows of ~250 bytes in the MariaDB rows (~200 MB)
 *   BENCH_REDIS_KEYS=600000      keys of 250 bytes in the Redis row (~190 MB)
 *   BENCH_FLEET_REDIS_MASTERS=20, BENCH_FLEET_REDIS_PER=10   Redis fleet (200 pairs)
 *   BENCH_FLEET_PG_PAIRS=50      PostgreSQL fleet
 *   BENCH_ROUNDS=1               runs of each side per row (the table shows the median time,
 *                                the longest stall, all failed writes)
 *   BENCH_WRITE_EVERY_MS=5       the writer's pause after each completed write (0: as fast as
 *                                it can, which takes a core from what it measures)
 *   BENCH_ONLY=postgresql,mysql,redis,startup,fleet   the groups to run
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dbrepl, envNumber, Measured, Ran, redact, runBench, Servers, sideBySide, timed, withServers, WRITE_EVERY_MS, Writes } from './bench-common';
import {
  EnginePair,
  fullSyncs,
  MARIA_LOGICAL_BY_HAND,
  MARIA_PHYSICAL_BY_HAND,
  mariaAfter,
  mariaLogicalByHand,
  mariaPhysicalByHand,
  MariaPair,
  mariaWriter,
  PG_BY_HAND,
  pgAfter,
  pgByHand,
  pgWriter,
  REDIS_BY_HAND,
  redisAfter,
  redisByHand,
  redisWriter,
  startMariaPair,
  startPgPair,
  startRedisPair,
} from './bench-engines';
import { Fleet, pgFleet, redisFleet } from './bench-fleets';
import { MARIADBD } from '../test/support/mariadb';
import { PG_BIN } from '../test/support/postgres';

const TABLE = '/tmp/dbrepl-bench-table.md';
const LOG = '/tmp/dbrepl-bench-log.txt';

const rounds = envNumber('BENCH_ROUNDS', 1);
const pgScale = envNumber('BENCH_PG_SCALE', 40);
const myRows = envNumber('BENCH_MY_ROWS', 800_000);
const redisKeys = envNumber('BENCH_REDIS_KEYS', 600_000);
const fleetMasters = envNumber('BENCH_FLEET_REDIS_MASTERS', 20);
const fleetPer = envNumber('BENCH_FLEET_REDIS_PER', 10);
const fleetPgPairs = envNumber('BENCH_FLEET_PG_PAIRS', 50);
const only = (process.env.BENCH_ONLY ?? 'postgresql,mysql,redis,startup,fleet').split(',').map((s) => s.trim());

interface Row {
  engine: string;
  size: string;
  procedure: string;
  native?: number;
  dbrepl?: number;
  /** The writer on the master during each side's run. */
  writes?: { dbrepl: Writes; native: Writes };
  peakMb?: number | null;
}

const notes: string[] = [];
const logs: string[] = [];

/** A dbrepl run whose log goes to LOG (each line with the seconds since it started). */
async function logged(what: string, run: Promise<Ran>): Promise<Ran> {
  const r = await run;
  logs.push(`== ${what} (${r.seconds.toFixed(2)} s)\n${redact(r.stamped.join('\n'))}\n`);
  return r;
}

function sidesRow(engine: string, size: string, procedure: string, s: { native: Measured; dbrepl: Measured }): Row {
  return { engine, size, procedure, native: s.native.seconds, dbrepl: s.dbrepl.seconds, writes: { dbrepl: s.dbrepl.writes, native: s.native.writes }, peakMb: s.dbrepl.peakMb };
}

/** Rows, or one row that says they failed (the other groups still run). */
async function attempt(engine: string, size: string, body: () => Promise<Row[]>): Promise<Row[]> {
  try {
    return await body();
  } catch (err) {
    const msg = redact(err instanceof Error ? err.message : String(err));
    console.error(`${engine}: ${msg}`);
    process.exitCode = 1;
    const line = msg.split('\n').find((l) => /\berror\b/i.test(l)) ?? msg.split('\n')[0]!;
    return [{ engine, size, procedure: `FAILED: ${line.trim().slice(0, 300)}` }];
  }
}

const resync = (what: string, file: string, env: NodeJS.ProcessEnv) => () => logged(what, dbrepl(['resync', '--pair', 'app/replica'], file, env));

/**
 * An engine's rows: its pair started (by `start`), enabled by `dbrepl apply` (logged, not in
 * the table), checked with `after`; then `rows` measures on the same servers.
 */
function engine<P extends EnginePair<unknown>>(name: string, size: string, start: (servers: Servers, dir: string) => Promise<P>, after: (p: P) => Promise<void>, rows: (p: P) => Promise<Row[]>): Promise<Row[]> {
  return attempt(name, size, () =>
    withServers(`dbrepl-bench-${name}-`, async (servers, dir) => {
      const p = await start(servers, dir);
      const enable = await logged(`${name}: apply (enable)`, dbrepl(['apply'], p.file, p.env));
      await after(p);
      notes.push(`${name}: the initial \`dbrepl apply\` that enabled the pair (not in the table) took ${enable.seconds.toFixed(2)} s.`);
      return rows(p);
    }),
  );
}

const postgresql = (): Promise<Row[]> =>
  engine('postgresql', `pgbench -s ${pgScale}`, (servers, dir) => startPgPair(servers, dir, pgScale), pgAfter, async (p) => {
    const s = await sideBySide(rounds, pgWriter(p.master), (i) => pgByHand(p, i), resync('postgresql: resync', p.file, p.env), () => pgAfter(p));
    return [sidesRow('postgresql', `${p.size} (pgbench -s ${pgScale})`, `by hand: ${PG_BY_HAND}; dbrepl: \`resync --pair\``, s)];
  });

/** dbrepl's log says which copy it made. */
function expectCopy(r: Ran, physical: boolean): Ran {
  if (/mariabackup --backup/.test(r.stderr) !== physical) throw new Error(`dbrepl did not make the ${physical ? 'physical' : 'logical'} copy:\n${r.stderr.slice(-3000)}`);
  return r;
}

/** The MariaDB pair, its plan (copy: auto) checked to say mariabackup before the enable. */
async function startMaria(servers: Servers, dir: string): Promise<MariaPair> {
  const p = await startMariaPair(servers, dir, myRows);
  const plan = await dbrepl(['plan', '--json'], p.file, p.env);
  if (!plan.stdout.includes('mariabackup --backup')) throw new Error(`the plan of the pair with copy: auto does not say mariabackup:\n${plan.stdout.slice(0, 3000)}`);
  notes.push('mysql: `dbrepl plan --json` of the pair with copy: auto has "mariabackup --backup" in its steps.');
  return p;
}

const mysql = (): Promise<Row[]> =>
  engine('mysql', `${myRows} rows`, startMaria, mariaAfter, async (p) => {
    const size = `${p.sizeMb} MB (${myRows} rows)`;
    const copy = (physical: boolean): Promise<Row[]> => {
      const name = `mysql (MariaDB), ${physical ? 'physical' : 'logical'} copy`;
      return attempt(name, size, async () => {
        const s = await sideBySide(
          rounds,
          mariaWriter(p.master),
          (i) => (physical ? mariaPhysicalByHand(p, i) : mariaLogicalByHand(p)),
          async () => expectCopy(await resync(`mysql: resync (copy: ${physical ? 'auto' : 'logical'})`, physical ? p.file : p.logicalFile, p.env)(), physical),
          () => mariaAfter(p),
        );
        const procedure = `by hand: ${physical ? MARIA_PHYSICAL_BY_HAND : MARIA_LOGICAL_BY_HAND}; dbrepl: \`resync --pair\`, copy: ${physical ? 'auto (mariabackup)' : 'logical'}`;
        return [sidesRow(name, size, procedure, s)];
      });
    };
    return [...(await copy(true)), ...(await copy(false))];
  });

const redis = (): Promise<Row[]> =>
  engine('redis', `${redisKeys} keys`, (servers, dir) => startRedisPair(servers, dir, redisKeys), redisAfter, async (p) => {
    const before = await fullSyncs(p.master);
    const s = await sideBySide(rounds, redisWriter(p.master), () => redisByHand(p), resync('redis: resync', p.file, p.env), () => redisAfter(p));
    notes.push(`redis: full syncs the master served during the ${2 * rounds} timed runs: ${(await fullSyncs(p.master)) - before}.`);
    return [sidesRow('redis', `${p.usedMb.toFixed(0)} MB used_memory (${redisKeys} keys)`, `by hand: ${REDIS_BY_HAND}; dbrepl: \`resync --pair\``, s)];
  });

/** scripts/bench-startup.mjs, as it is: its table's median milliseconds by command. */
function startup(): Promise<Row[]> {
  const engine = 'start-up (no server)';
  const size = 'replication.yml of 3 pairs';
  return attempt(engine, size, async () => {
    const r = await timed('bench-startup.mjs', process.execPath, [path.resolve('scripts/bench-startup.mjs')], { env: process.env, cwd: process.cwd() });
    const ms = new Map([...r.stdout.matchAll(/^\| (.+?) \| (\d+) \| [\d.]+ \|$/gm)].map((m) => [m[1]!, Number(m[2])]));
    const bare = ms.get('node -e 0 (bare)');
    const validate = ms.get('dbrepl validate');
    if (bare === undefined || validate === undefined) throw new Error(`bench-startup.mjs printed no such rows:\n${r.stdout}`);
    return [{ engine, size, procedure: 'bare `node -e 0` vs `dbrepl validate`, median of 15 runs each after 2 warm-ups (scripts/bench-startup.mjs)', native: bare / 1000, dbrepl: validate / 1000 }];
  });
}

function fleetRow(engine: string, native: string, f: Fleet): Row {
  const [d, ...more] = f.status;
  const also = more.map((s) => `; --max-parallel ${s.parallel}: ${s.seconds.toFixed(2)} s, ${s.peakMb.toFixed(0)} MB`).join('');
  return {
    engine,
    size: `${f.pairs} pairs, ${f.servers} servers`,
    procedure: `${native}, one after another; dbrepl: \`status --json\` (--max-parallel ${d!.parallel}, the default): ${d!.replicating}/${d!.pairs} replicating${also}`,
    native: f.nativeSeconds,
    dbrepl: d!.seconds,
    peakMb: d!.peakMb,
  };
}

async function fleets(): Promise<Row[]> {
  const redisName = 'redis fleet: status';
  const pgName = 'postgresql fleet: status';
  return [
    ...(await attempt(redisName, `${fleetMasters * fleetPer} pairs`, () =>
      withServers('dbrepl-bench-fleet-', async (servers, dir) => [fleetRow(redisName, 'redis-cli INFO replication on each server', await redisFleet(servers, dir, fleetMasters, fleetPer, [4, 16]))]),
    )),
    ...(await attempt(pgName, `${fleetPgPairs} pairs`, () =>
      withServers('dbrepl-bench-fleet-pg-', async (servers, dir) => {
        const f = await pgFleet(servers, dir, fleetPgPairs, [4, 16]);
        notes.push(`postgresql fleet: \`dbrepl apply\` enabled ${f.apply!.done}/${f.pairs} standbys in ${f.apply!.seconds.toFixed(2)} s (peak ${f.apply!.peakMb!.toFixed(0)} MB), before the status runs.`);
        return [fleetRow(pgName, 'psql pg_stat_replication / pg_stat_wal_receiver on each server', f)];
      }),
    )),
  ];
}

const secs = (s?: number): string => (s === undefined ? '-' : s < 1 ? s.toFixed(3) : s.toFixed(2));
const both = (w: Row['writes'], f: (x: Writes) => string): string => (w ? `${f(w.dbrepl)} / ${f(w.native)}` : '-');

function table(rows: Row[]): string {
  const head = ['engine', 'data size', 'native procedure', 'native s', 'dbrepl s', 'ratio (dbrepl/native)', 'master write stall ms (dbrepl / native)', 'failed writes (dbrepl / native)', 'dbrepl peak RSS MB'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const ratio = r.native && r.dbrepl !== undefined ? (r.dbrepl / r.native).toFixed(2) : '-';
    const cells = [
      r.engine,
      r.size,
      r.procedure,
      secs(r.native),
      secs(r.dbrepl),
      ratio,
      both(r.writes, (w) => w.maxGapMs.toFixed(0)),
      both(r.writes, (w) => `${w.failed} of ${w.writes + w.failed}`),
      r.peakMb ? r.peakMb.toFixed(0) : '-',
    ];
    lines.push(`| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** `NAME x.y.z` from a server's --version. */
const version = (name: string, cmd: string, pattern: RegExp): string => `${name} ${pattern.exec(spawnSync(cmd, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] ?? '?'}`;

runBench(async () => {
  const t0 = performance.now();
  const groups: Record<string, () => Promise<Row[]>> = { postgresql, mysql, redis, startup, fleet: fleets };
  const unknown = only.filter((g) => !(g in groups));
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: no group ${unknown.join(', ')} (groups: ${Object.keys(groups).join(', ')})`);
  const rows: Row[] = [];
  for (const [name, run] of Object.entries(groups)) {
    if (!only.includes(name)) continue;
    const g0 = performance.now();
    console.error(`bench: ${name}...`);
    rows.push(...(await run()));
    console.error(`bench: ${name} done in ${((performance.now() - g0) / 1000).toFixed(0)} s`);
  }
  fs.writeFileSync(LOG, logs.join('\n'));
  const minutes = ((performance.now() - t0) / 60_000).toFixed(1);
  const machine = `${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${version('PostgreSQL', `${PG_BIN}/postgres`, /\) ([\d.]+)/)}, ${version('MariaDB', MARIADBD, /Ver ([\d.]+)/)}, ${version('Redis', 'redis-server', /v=([\d.]+)/)}`;
  const text = [
    table(rows),
    '',
    `Measured by \`npm run bench\` in one run of ${minutes} min on ${machine}; ${rounds} run(s) of each side per row, native first, \`sync\` before each; times are wall-clock seconds of the whole procedure or command.`,
    `Stall: the longest gap between two completed writes of a writer on the master (its own connection, INSERT / INCR in a loop, ${WRITE_EVERY_MS} ms between a completed write and the next) during the run; failed writes: errors of that writer (each followed by a new connection), of all its writes. Peak RSS: VmHWM of the dbrepl process itself.`,
    ...notes.map((n) => `- ${n}`),
    `- dbrepl's log of each run, each line with the seconds since it started: ${LOG}`,
  ].join('\n');
  fs.writeFileSync(TABLE, `${text}\n`);
  console.log(`\n${text}\n\n(also in ${TABLE})`);
});
