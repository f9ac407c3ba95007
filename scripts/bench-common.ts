/**
 * What the benchmark scripts share: running a command timed (asynchronously, so a writer on
 * the same event loop keeps writing), the peak memory of a process, a writer that measures
 * how long the master keeps it waiting, the replication.yml of one pair, and the end of every
 * script (also on Ctrl-C): its servers stopped, its scratch directory removed, a failure's
 * exit code.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';

export const CLI = path.resolve('dist/cli.js');

export type Servers = Array<{ destroy(): Promise<void> }>;

export async function cleanUp(servers: Servers, dir: string): Promise<void> {
  await Promise.all(servers.map((s) => s.destroy()));
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The scratch directories and servers of the withServers calls under way: what Ctrl-C stops and removes. */
const live = new Set<{ servers: Servers; dir: string }>();

export function runBench(main: () => Promise<void>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping the benchmark's servers`);
      void Promise.all([...live].map((l) => cleanUp(l.servers, l.dir))).finally(() => process.exit(130));
    });
  }
  main().catch((err) => {
    console.error(redact(err instanceof Error ? (err.stack ?? err.message) : String(err)));
    process.exitCode = 1;
  });
}

/** Runs `body` with a scratch directory and a list to put its servers in; both go afterwards, whatever happens. */
export async function withServers<T>(prefix: string, body: (servers: Servers, dir: string) => Promise<T>): Promise<T> {
  const scratch = { servers: [] as Servers, dir: fs.mkdtempSync(path.join(os.tmpdir(), prefix)) };
  live.add(scratch);
  try {
    return await body(scratch.servers, scratch.dir);
  } finally {
    live.delete(scratch);
    await cleanUp(scratch.servers, scratch.dir);
  }
}

/** Puts a server on the list to destroy as soon as it has started (so a failure of its sibling's start still stops it). */
export async function keep<T extends Servers[number]>(servers: Servers, starting: Promise<T>): Promise<T> {
  const s = await starting;
  servers.push(s);
  return s;
}

/** A number from the environment (the benchmarks' sizes), or its default. */
export function envNumber(name: string, fallback: number, min = 1): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number of at least ${min}, not "${v}"`);
  return n;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Flushes the page cache's dirty pages: a copy that starts while the previous one is still being written out is slower. */
export const syncDisks = (): void => void spawnSync('sync');

const secrets = new Set<string>();
/** Remembers a password so that nothing this script prints shows it. */
export function secret(value: string): string {
  secrets.add(value);
  return value;
}
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('<secret>');
  return out;
}

/** Removes what runs left next to a data directory (dbrepl's preserved copies, the by-hand runs' moved-aside directories). */
export function removeKept(dataDir: string, marks = ['.dbrepl-', '.byhand-']): void {
  const parent = path.dirname(dataDir);
  const base = path.basename(dataDir);
  for (const f of fs.readdirSync(parent)) {
    if (f.startsWith(base) && marks.some((m) => f.includes(m))) fs.rmSync(path.join(parent, f), { recursive: true, force: true });
  }
}

/** A replication.yml of one pair, app/main → app/replica; `pair` adds keys to the pair. */
export function writePairFile(file: string, main: object, replica: object, o: { replication?: object; pair?: object } = {}): string {
  fs.writeFileSync(file, stringify({
    version: 1,
    ...(o.replication ? { defaults: { replication: o.replication } } : {}),
    applications: { app: { servers: { main, replica } } },
    replications: [{ master: 'app/main', slave: 'app/replica', ...o.pair }],
  }));
  return file;
}

export interface Ran {
  seconds: number;
  stdout: string;
  stderr: string;
  /** Each stderr line with the seconds since the start (where the time goes). */
  stamped: string[];
  /** The process's own peak resident memory (VmHWM), when asked for. */
  peakMb: number | null;
}

/** VmHWM of a running process, in MB (0 once it is gone). */
function highWater(pid: number): number {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kb ? Number(kb[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Runs a program, timed; rejects with its (redacted) output if it fails. Asynchronous: a
 * writer on this process's event loop keeps going meanwhile. `peak`: polls the process's
 * VmHWM (its own peak RSS, without the programs it starts) until it exits.
 */
export function timed(label: string, cmd: string, args: string[], o: { env: NodeJS.ProcessEnv; cwd?: string; peak?: boolean }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const since = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
    const child = spawn(cmd, args, { env: o.env, cwd: o.cwd ?? '/tmp' });
    let peakMb = 0;
    const poll = o.peak ? setInterval(() => (peakMb = Math.max(peakMb, highWater(child.pid!))), 10) : undefined;
    const stamped: string[] = [];
    let stdout = '';
    let stderr = '';
    let rest = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      const parts = (rest + c.toString()).split('\n');
      rest = parts.pop()!;
      for (const l of parts) stamped.push(`${since().toFixed(2).padStart(6)}  ${l}`);
    });
    // The last reading before the process is reaped (the exit event comes before the pipes close).
    child.on('exit', () => o.peak && (peakMb = Math.max(peakMb, highWater(child.pid!))));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = since();
      clearInterval(poll);
      if (code !== 0) return reject(new Error(redact(`${label} failed (${code}): ${stderr.slice(-4000)}\n${stdout.slice(-2000)}`)));
      resolve({ seconds, stdout, stderr, stamped, peakMb: o.peak ? peakMb : null });
    });
  });
}

/** A shell script, timed (`set -e` and `pipefail`: any failed command or pipe stage fails it). */
export function timedShell(label: string, script: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  return timed(label, 'bash', ['-c', `set -eo pipefail\n${script}`], { env });
}

/** `node dist/cli.js ARGS -c FILE`, timed, with its peak memory. */
export function dbrepl(args: string[], file: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  return timed(`dbrepl ${args[0]}`, process.execPath, [CLI, ...args, '-c', file], { env, peak: true });
}

/** The last run's log, each line with the seconds since it started. */
export function printStamped(label: string, r: Ran): void {
  console.log(redact(`${label}, each log line with the seconds since it started:\n${r.stamped.join('\n')}\n${r.seconds.toFixed(2).padStart(6)}  (exit)`));
}

/** One connection of a writer: a write, and closing it. */
export interface WriterConnection {
  write(): Promise<unknown>;
  close(): Promise<unknown> | void;
}

export interface Writes {
  /** The longest time between two completed writes (from the start to the first, and from the last to the stop, included). */
  maxGapMs: number;
  failed: number;
  writes: number;
}

/**
 * A writer on the master: writes in a loop through its own connection, one write every
 * `everyMs` (0: as fast as it can; on 2 cores that takes a core from what it measures),
 * measuring the longest gap between two completed writes; each failed write is counted and
 * followed by a new connection. Connected before it returns (not part of the first gap).
 */
export async function startWriter(connect: () => Promise<WriterConnection>, everyMs: number): Promise<{ stop(): Promise<Writes> }> {
  let conn: WriterConnection | null = await connect();
  let stopped = false;
  const w: Writes = { maxGapMs: 0, failed: 0, writes: 0 };
  let last = performance.now();
  const gap = (): void => {
    const now = performance.now();
    w.maxGapMs = Math.max(w.maxGapMs, now - last);
    last = now;
  };
  const loop = (async () => {
    while (!stopped) {
      try {
        conn ??= await connect();
        await conn.write();
        w.writes++;
        gap();
        if (everyMs > 0) await sleep(everyMs);
      } catch {
        w.failed++;
        const broken = conn;
        conn = null;
        await Promise.resolve(broken?.close()).catch(() => undefined);
        await sleep(20);
      }
    }
  })();
  return {
    async stop(): Promise<Writes> {
      stopped = true;
      await loop;
      gap();
      await Promise.resolve(conn?.close()).catch(() => undefined);
      return w;
    },
  };
}

/** Polls until `done` (untimed checks between runs); throws after `ms`. */
export async function waitFor(what: string, done: () => Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await done()) return;
    } catch {
      // Not yet.
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

export interface Measured {
  seconds: number;
  writes: Writes;
  /** dbrepl's peak memory, where the run was dbrepl's. */
  peakMb: number | null;
}

/** The writers' pace: a write every BENCH_WRITE_EVERY_MS ms after the previous one completed (0: as fast as they can). */
export const WRITE_EVERY_MS = envNumber('BENCH_WRITE_EVERY_MS', 5, 0);

/** One timed run with a writer on the master: `sync` first, the writer connected, the run, the writer stopped. */
export async function underLoad(connect: () => Promise<WriterConnection>, run: () => Promise<Ran>): Promise<Measured> {
  syncDisks();
  const writer = await startWriter(connect, WRITE_EVERY_MS);
  let r: Ran;
  try {
    r = await run();
  } catch (err) {
    await writer.stop();
    throw err;
  }
  return { seconds: r.seconds, writes: await writer.stop(), peakMb: r.peakMb };
}

/** Runs of one kind taken together: the median time, the longest stall, all failed writes, the highest peak. */
export function overRounds(runs: Measured[]): Measured {
  const peaks = runs.map((r) => r.peakMb).filter((p): p is number => p !== null);
  return {
    seconds: median(runs.map((r) => r.seconds)),
    writes: {
      maxGapMs: Math.max(...runs.map((r) => r.writes.maxGapMs)),
      failed: runs.reduce((n, r) => n + r.writes.failed, 0),
      writes: runs.reduce((n, r) => n + r.writes.writes, 0),
    },
    peakMb: peaks.length > 0 ? Math.max(...peaks) : null,
  };
}

/**
 * The native procedure and dbrepl side by side on the same servers, `rounds` times each,
 * native first, a writer on the master during every run; `after` (untimed) runs after each.
 */
export async function sideBySide(
  rounds: number,
  connect: () => Promise<WriterConnection>,
  native: (round: number) => Promise<Ran>,
  tool: () => Promise<Ran>,
  after: () => Promise<void>,
): Promise<{ native: Measured; dbrepl: Measured }> {
  const n: Measured[] = [];
  const d: Measured[] = [];
  for (let i = 0; i < rounds; i++) {
    n.push(await underLoad(connect, () => native(i)));
    await after();
    d.push(await underLoad(connect, tool));
    await after();
  }
  return { native: overRounds(n), dbrepl: overRounds(d) };
}

/** Waits until the slave reads what the master reads (the writer's rows): the run left a slave that replicates. */
export async function caughtUp<S>(what: string, p: { master: S; slave: S }, read: (server: S) => Promise<unknown>): Promise<void> {
  const want = String(await read(p.master));
  await waitFor(`${what} on the slave to reach ${want}`, async () => String(await read(p.slave)) === want);
}
