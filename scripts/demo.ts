/**
 * The main job on real local servers, all three live engines: PostgreSQL, MariaDB and Redis.
 * Seven servers (own ports, temp dirs, started by test/support/) in two applications:
 *
 *   shop:    pg-main, pg-replica (PostgreSQL), db (MariaDB), cache (Redis)
 *   reports: pg (PostgreSQL), db (MariaDB), cache (Redis)
 *
 * and one replication.yml with a pair inside `shop` (shop/pg-main -> shop/pg-replica) and one
 * pair across applications per engine. The committed `dist/cli.js` runs through validate,
 * plan, apply, status and env, exactly as an operator would; a row (a key) written on each
 * master is read on each slave; then a cutover: the PostgreSQL pair into `reports` is set to
 * disabled, planned, applied, and the promoted server takes a write.
 *
 * Everything it starts lives under one temp dir (TMPDIR points there) and
 * is stopped and removed at the end, also on SIGINT/SIGTERM/SIGHUP in any phase: dbrepl runs
 * in a session of its own (so a Ctrl-C reaches the demo, not it) and the demo stops it and
 * every process it started before stopping the servers; exit 130 on SIGINT, 143 on SIGTERM.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { PG_BIN, PgCluster, startPostgres } from '../test/support/postgres';
import { MariaServer, startMariaDB } from '../test/support/mariadb';
import { RedisServer, startRedis } from '../test/support/redis';
import { eventually, sh, sleep } from '../test/support/sh';

// scripts/demo.sh runs this from the repository root.
const CLI = path.resolve('dist/cli.js');
const T0 = Date.now();
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// Interruption and cleanup
// ---------------------------------------------------------------------------------------------

/** Set by the first SIGINT/SIGTERM/SIGHUP: every phase stops at its next step. */
let stopping: NodeJS.Signals | null = null;
let phase = 'preparing';
class Interrupted extends Error {}
function checkpoint(): void {
  if (stopping) throw new Interrupted(`interrupted by ${stopping}`);
}

/** Every file and process of the demo lives under this directory. */
const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-demo-run-'));
// The postgres and mysql users must reach their servers' directories inside it.
fs.chmodSync(ROOT, 0o755);
// The support code creates each server's directory with mkdtemp(os.tmpdir()): inside ROOT.
process.env.TMPDIR = ROOT;

type Server = PgCluster | MariaServer | RedisServer;
/** Servers whose start finished; their own destroy() stops them. */
const started: Server[] = [];
/** Server starts under way: cleanup waits for them (a start half done is stopped from ROOT). */
const starting = new Set<Promise<unknown>>();
const children = new Set<ChildProcess>();

function track<T extends Server>(p: Promise<T>): Promise<T> {
  const tracked = p.then((s) => {
    started.push(s);
    return s;
  });
  starting.add(tracked);
  tracked.then(
    () => starting.delete(tracked),
    () => starting.delete(tracked),
  );
  return tracked;
}

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      out.push({ pid: Number(name), comm: stat.slice(stat.indexOf('(') + 1, close), ppid: Number(stat.slice(close + 2).split(' ')[1]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function descendantsOf(root: number): Proc[] {
  const all = processes();
  const byParent = new Map<number, Proc[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const found: Proc[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const c of byParent.get(queue.shift()!) ?? []) {
      found.push(c);
      queue.push(c.pid);
    }
  }
  return found;
}

const SERVER_PROGRAMS = new Set(['postgres', 'mariadbd', 'mysqld', 'redis-server']);
const signal = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
};

/**
 * Stops every process the demo started that is not a database server: dbrepl (in its own
 * session) with the host commands it runs (each in a process group of its own), and the
 * support code's initdb, pg_ctl, mariadb-install-db... The tree is frozen first (SIGSTOP,
 * until no new process appears) and then killed, so that nothing escapes by being orphaned.
 * Servers are stopped afterwards, by their own stop commands.
 */
function killHelpers(): string[] {
  const frozen = new Map<number, string>();
  for (let round = 0; round < 50; round++) {
    const fresh = descendantsOf(process.pid).filter((p) => !SERVER_PROGRAMS.has(p.comm) && !frozen.has(p.pid));
    if (fresh.length === 0) break;
    for (const p of fresh) {
      signal(p.pid, 'SIGSTOP');
      frozen.set(p.pid, p.pid === [...children][0]?.pid ? 'dbrepl' : p.comm);
    }
  }
  for (const pid of frozen.keys()) signal(pid, 'SIGKILL');
  return [...frozen.values()];
}

/** Processes running from (or naming) a path under ROOT: servers, and whatever else is left. */
function processesUnderRoot(): number[] {
  const pids: number[] = [];
  for (const p of processes()) {
    if (p.pid === process.pid) continue;
    let cwd = '';
    let cmdline = '';
    try {
      cwd = fs.readlinkSync(`/proc/${p.pid}/cwd`);
      cmdline = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      // gone, or a kernel thread
    }
    if (cwd === ROOT || cwd.startsWith(ROOT + '/') || cmdline.includes(ROOT + '/') || cmdline.includes(ROOT + ' ')) pids.push(p.pid);
  }
  return pids;
}

function find(dir: string, name: string, depth = 3): string[] {
  if (depth < 0) return [];
  const out: string[] = [];
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === name) out.push(p);
    else if (e.isDirectory()) out.push(...find(p, name, depth - 1));
  }
  return out;
}

const pidIn = (file: string): number | undefined => {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').split('\n')[0]!.trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
};

/** Servers that run from ROOT but whose start never finished (interrupted): stopped by their pid files. */
async function stopLeftoverServers(): Promise<void> {
  const waits: Array<Promise<unknown>> = [];
  for (const pidFile of find(ROOT, 'postmaster.pid')) {
    const dataDir = path.dirname(pidFile);
    waits.push(sh('/bin/sh', ['-c', `cd /tmp && runuser -u postgres -- ${PG_BIN}/pg_ctl stop -D ${dataDir} -m immediate -w -t 20`], { allowFail: true }));
  }
  for (const pidFile of [...find(ROOT, 'mysqld.pid'), ...find(ROOT, 'redis.pid')]) {
    const pid = pidIn(pidFile);
    if (pid === undefined) continue;
    signal(pid, 'SIGTERM');
    waits.push((async () => {
      for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await sleep(100);
    })());
  }
  await Promise.all(waits);
}

let cleaning: Promise<string[]> | undefined;

/** Stops everything the demo started and removes ROOT; resolves with what it could not do. */
function cleanup(work: Promise<unknown>): Promise<string[]> {
  cleaning ??= (async () => {
    const problems: string[] = [];
    if (stopping) {
      // Stop dbrepl and the helpers until the demo's own steps (and any server start) have given up.
      const settled = Promise.allSettled([work, ...starting]);
      const deadline = Date.now() + 30_000;
      let done = false;
      void settled.then(() => (done = true));
      const killed: string[] = [];
      while (!done && Date.now() < deadline) {
        killed.push(...killHelpers());
        await Promise.race([settled, sleep(150)]);
      }
      killed.push(...killHelpers());
      if (killed.length > 0) console.error(`stopped ${killed.length} process(es) the demo had started: ${[...new Set(killed)].join(', ')}`);
      for (const c of children) if (c.exitCode === null && c.signalCode === null) await new Promise((r) => c.once('exit', r));
    }
    // Their pids, to wait below until they are gone for good (killed servers linger as zombies
    // until init reaps them, and would still show in ps).
    const gone = new Set(processesUnderRoot());
    const results = await Promise.allSettled(started.map((s) => s.destroy()));
    for (const r of results) if (r.status === 'rejected') problems.push(`a server's stop failed: ${String(r.reason)}`);
    await stopLeftoverServers();
    // Last resort for anything still running from ROOT.
    for (let i = 0; i < 50; i++) {
      const left = processesUnderRoot();
      if (left.length === 0) break;
      if (i === 49) problems.push(`processes still running from ${ROOT}: ${left.join(' ')}`);
      for (const pid of left) {
        gone.add(pid);
        signal(pid, 'SIGKILL');
      }
      await sleep(200);
    }
    for (let i = 0; i < 50 && [...gone].some((pid) => fs.existsSync(`/proc/${pid}`)); i++) await sleep(100);
    try {
      fs.rmSync(ROOT, { recursive: true, force: true, maxRetries: 5 });
    } catch (err) {
      problems.push(`could not remove ${ROOT}: ${(err as Error).message}`);
    }
    return problems;
  })();
  return cleaning;
}

// ---------------------------------------------------------------------------------------------
// Output helpers
// ---------------------------------------------------------------------------------------------

const BOLD = process.stdout.isTTY && !process.env.NO_COLOR ? (s: string) => `\x1b[1m${s}\x1b[0m` : (s: string) => s;
let section = 0;
function heading(title: string): void {
  checkpoint();
  phase = title;
  section++;
  const text = `── ${section}. ${title} `;
  console.log(`\n${BOLD(text + '─'.repeat(Math.max(4, 78 - text.length)))}`);
}

/** Runs `dbrepl ARGS` (node dist/cli.js) in the work dir; throws if it fails. */
async function dbrepl(dir: string, env: NodeJS.ProcessEnv, ...args: string[]): Promise<void> {
  checkpoint();
  console.log(`\n${BOLD(`$ dbrepl ${args.join(' ')}`)}`);
  const t0 = Date.now();
  const code = await new Promise<number>((resolve) => {
    // A session of its own: a Ctrl-C goes to the demo, which stops dbrepl and what it runs.
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    children.add(child);
    child.on('error', (err) => {
      console.error(`cannot run dbrepl: ${err.message}`);
      resolve(127);
    });
    child.on('exit', (c, sig) => {
      children.delete(child);
      resolve(c ?? (sig ? 128 : 1));
    });
  });
  checkpoint();
  if (code !== 0) throw new Error(`dbrepl ${args.join(' ')} failed (exit ${code})`);
  if (Date.now() - t0 > 2000) console.log(`(dbrepl ${args[0]} took ${secs(Date.now() - t0)})`);
}

/** Polls until fn returns a truthy value; gives up on interruption or after timeoutMs. */
const until = <T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> => eventually(fn, timeoutMs, what, checkpoint);

// ---------------------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------------------

interface Summary {
  pairs: string[];
  reads: string[];
  cutover: string[];
  timings: string[];
}

const CUTOVER = 'reports-pg';

async function run(): Promise<Summary> {
  const summary: Summary = { pairs: [], reads: [], cutover: [], timings: [] };
  const dir = path.join(ROOT, 'work');
  fs.mkdirSync(dir);

  heading('Start seven servers (PostgreSQL 3, MariaDB 2, Redis 2), each on its own port');
  let t = Date.now();
  // A physical PostgreSQL copy carries the master's roles: its servers share one admin password.
  // MariaDB and Redis servers keep their own admin passwords.
  const pgAdmin = randomBytes(12).toString('hex');
  const [pgMain, pgReplica, reportsPg, shopDb, reportsDb, shopCache, reportsCache] = await Promise.all([
    track(startPostgres({ password: pgAdmin })),
    track(startPostgres({ password: pgAdmin })),
    track(startPostgres({ password: pgAdmin, layout: 'debian' })),
    track(startMariaDB()),
    track(startMariaDB()),
    track(startRedis()),
    track(startRedis()),
  ] as const);
  checkpoint();
  const serverLines: Array<[string, string, number]> = [
    ['shop/pg-main', 'PostgreSQL', pgMain.port],
    ['shop/pg-replica', 'PostgreSQL', pgReplica.port],
    ['shop/db', 'MariaDB (runs as mysql, Debian layout)', shopDb.port],
    ['shop/cache', 'Redis', shopCache.port],
    ['reports/pg', 'PostgreSQL (Debian layout)', reportsPg.port],
    ['reports/db', 'MariaDB (runs as mysql, Debian layout)', reportsDb.port],
    ['reports/cache', 'Redis', reportsCache.port],
  ];
  for (const [name, what, port] of serverLines) console.log(`  ${name.padEnd(16)} 127.0.0.1:${String(port).padEnd(6)} ${what}`);
  summary.timings.push(`servers started in ${secs(Date.now() - t)}`);
  console.log(`(started in ${secs(Date.now() - t)})`);

  console.log('\nData on the masters before anything replicates:');
  await pgMain.query('CREATE TABLE orders (id serial PRIMARY KEY, item text)');
  await pgMain.query(`INSERT INTO orders (item) VALUES ('written before enable')`);
  console.log(`  shop/pg-main  orders: 'written before enable'`);
  await shopDb.query('CREATE DATABASE shop');
  await shopDb.query('CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(100)) ENGINE=InnoDB');
  await shopDb.query(`INSERT INTO shop.orders (item) VALUES ('written before enable')`);
  console.log(`  shop/db       shop.orders: 'written before enable'`);
  await shopCache.call('SET', 'order:1', 'written before enable');
  console.log(`  shop/cache    order:1 = 'written before enable'`);
  checkpoint();

  heading('replication.yml');
  const pg = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: '${PG_ADMIN_PASSWORD}', service: c.service });
  const maria = (s: MariaServer, v: string) => ({ engine: 'mysql', host: s.host, port: s.port, user: 'admin', password: `\${${v}}`, service: s.service, options_file: s.dbreplOptionsFile });
  const redis = (s: RedisServer, v: string) => ({ engine: 'redis', host: s.host, port: s.port, password: `\${${v}}`, service: s.service });
  const doc = (cutoverState: 'enabled' | 'disabled') => ({
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPLICATION_PASSWORD}' } },
    applications: {
      shop: {
        environment: 'production',
        servers: { 'pg-main': pg(pgMain), 'pg-replica': pg(pgReplica), db: maria(shopDb, 'SHOP_DB_PASSWORD'), cache: redis(shopCache, 'SHOP_CACHE_PASSWORD') },
      },
      reports: {
        environment: 'reports',
        servers: { pg: pg(reportsPg), db: maria(reportsDb, 'REPORTS_DB_PASSWORD'), cache: redis(reportsCache, 'REPORTS_CACHE_PASSWORD') },
      },
    },
    replications: [
      { master: 'shop/pg-main', slave: 'shop/pg-replica' },
      { master: 'shop/pg-main', slave: 'reports/pg', name: CUTOVER, state: cutoverState, max_lag: '1m' },
      { master: 'shop/db', slave: 'reports/db', name: 'reports-db', catchup_timeout: '60s' },
      { master: 'shop/cache', slave: 'reports/cache', name: 'reports-cache', max_lag: '30s' },
    ],
  });
  const file = path.join(dir, 'replication.yml');
  fs.writeFileSync(file, stringify(doc('enabled'), { lineWidth: 0 }));
  console.log(`(${file}; passwords are \${VAR} references, given to dbrepl in its environment)\n`);
  console.log(fs.readFileSync(file, 'utf8').trimEnd());
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PG_ADMIN_PASSWORD: pgAdmin,
    SHOP_DB_PASSWORD: shopDb.password,
    REPORTS_DB_PASSWORD: reportsDb.password,
    SHOP_CACHE_PASSWORD: shopCache.password,
    REPORTS_CACHE_PASSWORD: reportsCache.password,
    REPLICATION_PASSWORD: randomBytes(12).toString('hex'),
  };

  heading('validate, plan, apply, status');
  await dbrepl(dir, env, 'validate');
  await dbrepl(dir, env, 'plan');
  t = Date.now();
  await dbrepl(dir, env, 'apply');
  summary.timings.push(`apply of 4 pairs ${secs(Date.now() - t)}`);
  summary.pairs.push(
    'postgresql  shop/pg-main -> shop/pg-replica   (within shop)',
    `postgresql  shop/pg-main -> reports/pg        (across applications, "${CUTOVER}")`,
    'mysql       shop/db      -> reports/db        (across applications, "reports-db")',
    'redis       shop/cache   -> reports/cache     (across applications, "reports-cache")',
  );
  await dbrepl(dir, env, 'status');

  heading('Write on each master, read on each slave');
  await pgMain.query(`INSERT INTO orders (item) VALUES ('written after enable')`);
  console.log(`shop/pg-main  INSERT INTO orders: 'written after enable'`);
  await shopDb.query(`INSERT INTO shop.orders (item) VALUES ('written after enable')`);
  console.log(`shop/db       INSERT INTO shop.orders: 'written after enable'`);
  await shopCache.call('SET', 'order:2', 'written after enable');
  console.log(`shop/cache    SET order:2 'written after enable'`);
  const read = (name: string, what: string, values: string[]): void => {
    const line = `${name.padEnd(16)} ${what}: ${values.map((v) => `'${v}'`).join(', ')}`;
    console.log(`  ${line}`);
    summary.reads.push(line);
  };
  console.log('Read on the slaves:');
  for (const [name, c] of [['shop/pg-replica', pgReplica], ['reports/pg', reportsPg]] as const) {
    const rows = await until(async () => {
      const r = await c.query<{ item: string }>('SELECT item FROM orders ORDER BY id');
      return r.length === 2 ? r : undefined;
    }, 20_000, `the rows on ${name}`);
    read(name, 'orders', rows.map((r) => r.item));
  }
  const dbRows = await until(async () => {
    const r = await reportsDb.query<{ item: string } & import('mysql2/promise').RowDataPacket>('SELECT item FROM shop.orders ORDER BY id');
    return r.length === 2 ? r : undefined;
  }, 20_000, 'the rows on reports/db');
  read('reports/db', 'shop.orders', dbRows.map((r) => r.item));
  const keys = await until(async () => {
    const [k1, k2] = [await reportsCache.call('GET', 'order:1'), await reportsCache.call('GET', 'order:2')];
    return k2 ? [String(k1), String(k2)] : undefined;
  }, 20_000, 'the key on reports/cache');
  read('reports/cache', 'order:1, order:2', keys);

  const refused = await reportsPg.query(`INSERT INTO orders (item) VALUES ('x')`).then(
    () => 'accepted (unexpected)',
    (err: Error) => `refused: ${err.message}`,
  );
  console.log(`\nA write on the slave reports/pg is ${refused}`);

  heading('env: the variables each application gets');
  await dbrepl(dir, env, 'env');

  heading(`Cutover: "${CUTOVER}" (shop/pg-main -> reports/pg) set to disabled`);
  fs.writeFileSync(file, stringify(doc('disabled'), { lineWidth: 0 }));
  console.log(`In replication.yml:\n  - master: shop/pg-main\n    slave: reports/pg\n    name: ${CUTOVER}\n    state: disabled     # was: enabled`);
  await dbrepl(dir, env, 'plan');
  t = Date.now();
  await dbrepl(dir, env, 'apply');
  const cutoverMs = Date.now() - t;
  await reportsPg.query(`INSERT INTO orders (item) VALUES ('written on the promoted reports/pg')`);
  const after = await reportsPg.query<{ item: string }>('SELECT item FROM orders ORDER BY id');
  console.log(`\nreports/pg (promoted) accepts writes; its orders now: ${after.map((r) => `'${r.item}'`).join(', ')}`);
  // The master goes on, with the slave it kept; the promoted server no longer follows it.
  await pgMain.query(`INSERT INTO orders (item) VALUES ('written after the cutover')`);
  const kept = await until(async () => {
    const r = await pgReplica.query<{ item: string }>('SELECT item FROM orders ORDER BY id');
    return r.length === 3 ? r : undefined;
  }, 20_000, 'the row on shop/pg-replica');
  const promoted = await reportsPg.query<{ item: string }>(`SELECT item FROM orders WHERE item = 'written after the cutover'`);
  console.log(`shop/pg-main  INSERT INTO orders: 'written after the cutover'`);
  console.log(`  shop/pg-replica reads it (${kept.length} rows); reports/pg ${promoted.length === 0 ? 'does not (it follows no master now)' : 'reads it too (unexpected)'}`);
  summary.cutover.push(
    `"${CUTOVER}" set to disabled in replication.yml; plan + apply promoted reports/pg (apply ${secs(cutoverMs)})`,
    `reports/pg accepted a write: ${after.length} rows (2 replicated before the cutover + 1 of its own)`,
    `a row written on shop/pg-main afterwards reached shop/pg-replica, ${promoted.length === 0 ? 'not' : 'and also'} reports/pg`,
  );
  await dbrepl(dir, env, 'env', '--format', 'json');
  phase = 'cleanup';
  return summary;
}

function finalScreen(s: Summary, problems: string[]): void {
  const rule = '═'.repeat(78);
  console.log(`\n${BOLD(rule)}`);
  console.log(BOLD(' dbrepl demo: summary'));
  console.log(BOLD(rule));
  console.log(' Pairs enabled by `dbrepl apply` (7 servers, 2 applications):');
  for (const p of s.pairs) console.log(`   ${p}`);
  console.log(' Written on the masters after apply, read on the slaves:');
  for (const r of s.reads) console.log(`   ${r}`);
  console.log(' Cutover:');
  for (const c of s.cutover) console.log(`   ${c}`);
  console.log(` Timings: ${[...s.timings, `total ${secs(Date.now() - T0)}`].join(', ')}`);
  console.log(problems.length === 0 ? ' Cleanup: every server stopped, temp dirs removed.' : ` Cleanup problems:\n   ${problems.join('\n   ')}`);
  console.log(BOLD(rule));
}

const work = run();

function onSignal(sig: NodeJS.Signals): void {
  if (stopping) {
    console.error(`(${sig} again: still stopping everything the demo started, please wait)`);
    return;
  }
  stopping = sig;
  console.error(`\n${BOLD(`Interrupted by ${sig} during "${phase}"`)}: stopping dbrepl, the servers, removing ${ROOT} ...`);
  void cleanup(work)
    .then((problems) => {
      for (const p of problems) console.error(`cleanup: ${p}`);
      console.error(problems.length === 0 ? 'Cleaned up: every server stopped, temp dirs removed.' : 'Cleanup incomplete (see above).');
    })
    .catch((err) => console.error(`cleanup failed: ${(err as Error).message}`))
    .finally(() => process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGTERM' ? 143 : 129));
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => onSignal(sig));

void work.then(
  async (summary) => {
    console.log('\nStopping the servers and removing the temp dirs...');
    const problems = await cleanup(work);
    if (stopping) return; // the signal handler exits
    finalScreen(summary, problems);
    if (problems.length > 0) {
      console.log('Demo finished, but the cleanup was incomplete.');
      process.exitCode = 1;
    } else {
      console.log('Demo finished: all commands succeeded.');
    }
  },
  async (err) => {
    if (stopping) return; // interrupted: the signal handler cleans up and exits
    console.error(`\nDemo failed during "${phase}": ${(err as Error).message}`);
    const problems = await cleanup(work);
    for (const p of problems) console.error(`cleanup: ${p}`);
    if (!stopping) process.exitCode = 1;
  },
);
