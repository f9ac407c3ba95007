import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { DbreplError } from '../errors';
import type { Server } from '../model';
import { unstoppable } from '../util/cancel';
import type { Host } from './host';

/**
 * The state dbrepl keeps on a server's host while it works on that server: a lock (one
 * action at a time on a slave, whichever run) and the journal of the action's steps, so a
 * run killed half-way leaves what the next run needs to finish or roll back. Root's own
 * directory: nothing a database user can plant links in. One directory per server, keyed
 * by what identifies it on its host even while it is down (engine, port, network namespace).
 */
export const STATE_DIR = '/var/lib/dbrepl';

/** Who holds a lock: enough to tell, from the same machine, that the holder is gone. */
export interface Owner {
  /** The run (GitHub run id and attempt, or a random id). */
  run: string;
  /** Random per run: what every lock operation checks it still owns. */
  token: string;
  host: string;
  /** /etc/machine-id of the machine the run is on; with the boot id and pid, proof of life. */
  machine: string;
  boot: string;
  pid: number;
  /** The process's start time (clock ticks since boot): a pid reused later is not the holder. */
  pidStart: string;
  since: string;
  /** Set when the run ended leaving work in the journal (an undo failed): the next run takes over at once. */
  abandoned?: string;
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return fallback;
  }
}

/** Field 22 of /proc/<pid>/stat: when the process started. */
function processStart(pid: number): string | null {
  const stat = readOr(`/proc/${pid}/stat`, '');
  if (!stat) return null;
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
}

/** This process as a lock owner. */
export function localOwner(env: NodeJS.ProcessEnv): Owner {
  const run = env.GITHUB_RUN_ID ? `github-${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}` : `cli-${randomBytes(4).toString('hex')}`;
  return {
    run,
    token: randomBytes(12).toString('hex'),
    host: os.hostname(),
    machine: readOr('/etc/machine-id', ''),
    boot: readOr('/proc/sys/kernel/random/boot_id', ''),
    pid: process.pid,
    pidStart: processStart(process.pid) ?? '',
    since: new Date().toISOString(),
  };
}

/**
 * Why the holder is provably gone, judged from this machine: it ran here (same machine id)
 * and the machine has rebooted since, or its process has ended (or the pid now belongs to
 * another process). Null when that cannot be proven (another machine, or it still runs).
 */
export function goneHere(holder: Owner, me: Owner): string | null {
  if (!holder.machine || holder.machine !== me.machine) return null;
  if (holder.boot !== me.boot) return 'its machine has rebooted since';
  if (holder.pid === me.pid && holder.pidStart === me.pidStart) return null;
  const start = processStart(holder.pid);
  if (start === null) return `its process ${holder.pid} has ended`;
  if (holder.pidStart && start !== holder.pidStart) return `its process ${holder.pid} has ended (the pid now belongs to another process)`;
  return null;
}

export function describeOwner(o: Owner): string {
  return `run ${o.run} (pid ${o.pid} on ${o.host}, since ${o.since})`;
}

/** The server's directory under STATE_DIR on its host. */
export async function stateDirOf(host: Host, server: Server): Promise<string> {
  const netns = /\[(\d+)\]/.exec((await host.facts()).netns)?.[1] ?? '0';
  const where = server.host.startsWith('/') ? `socket-${createHash('sha256').update(server.host).digest('hex').slice(0, 12)}` : String(server.port);
  return `${STATE_DIR}/${server.engine}-${where}-${netns}`;
}

// Every operation runs under flock on the directory's mutex, so taking, taking over, renewing
// and releasing never interleave; each checks the token it expects, so a run that lost its
// lock (taken over after its lease ran out) can neither renew nor journal nor release it.
const PRELUDE = `set -u
base=${STATE_DIR}; d=$1
if [ -L "$base" ] || { [ -e "$base" ] && [ "$(stat -c %u -- "$base")" != 0 ]; }; then echo "$base is a link or not owned by root" >&2; exit 6; fi
mkdir -p -m 700 -- "$base" "$d" || exit 2
exec 9>"$d/.mutex"; flock -w 30 9 || { echo "timed out waiting for $d/.mutex" >&2; exit 5; }
`;

const SCRIPTS = {
  acquire: `${PRELUDE}mkdir -m 700 -- "$d/lock" 2>/dev/null || exit 3
cat > "$d/lock/owner" && touch "$d/lock/heartbeat" || { rm -rf -- "$d/lock"; exit 1; }`,
  // Reading changes nothing (plan and status read): no directory made, no mutex taken; the
  // owner file is replaced by rename, and a journal line half-written is skipped by the parser.
  read: `d=$1; [ -d "$d/lock" ] || exit 4
now=$(date +%s); hb=$(stat -c %Y -- "$d/lock/heartbeat" 2>/dev/null || echo 0)
printf '%s\\n' "$((now - hb))"; cat -- "$d/lock/owner" 2>/dev/null; printf '\\n@@journal\\n'; cat -- "$d/lock/journal" 2>/dev/null; exit 0`,
  takeover: `${PRELUDE}[ -d "$d/lock" ] || exit 4
grep -qF -- "$2" "$d/lock/owner" || exit 3
cat > "$d/lock/owner.new" && mv -f -- "$d/lock/owner.new" "$d/lock/owner" && touch "$d/lock/heartbeat"`,
  heartbeat: `${PRELUDE}grep -qF -- "$2" "$d/lock/owner" 2>/dev/null || exit 3
touch "$d/lock/heartbeat"`,
  journal: `${PRELUDE}grep -qF -- "$2" "$d/lock/owner" 2>/dev/null || exit 3
cat >> "$d/lock/journal"`,
  clearJournal: `${PRELUDE}grep -qF -- "$2" "$d/lock/owner" 2>/dev/null || exit 3
rm -f -- "$d/lock/journal"`,
  release: `${PRELUDE}grep -qF -- "$2" "$d/lock/owner" 2>/dev/null || exit 3
rm -rf -- "$d/lock"`,
} as const;

export type LockOp = keyof typeof SCRIPTS;

export interface LockRead {
  /** Seconds since the holder last renewed, by the host's clock. */
  heartbeatAge: number;
  owner: Owner | null;
  journal: string;
}

/** Runs one lock operation on the host; returns its exit status (0 done, 3 not ours / taken, 4 no lock). */
export async function lockOp(host: Host, dir: string, op: LockOp, token = '', input?: string): Promise<{ code: number; stdout: string }> {
  // Never cut short by a cancellation: a cancelled run still journals its rollback and releases.
  const r = await unstoppable(() => host.run(['sh', '-c', SCRIPTS[op], 'dbrepl-lock', dir, token], { input: input ?? '', timeoutMs: 60_000 }));
  if (r.cancelled) return { code: 130, stdout: '' };
  if (r.code === 0 || r.code === 3 || r.code === 4) return { code: r.code, stdout: r.stdout };
  throw new DbreplError('STEP', `the lock in ${dir} on ${host.label} (${op}) failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-2).join(' ') || 'no output'}`);
}

export async function readLock(host: Host, dir: string): Promise<LockRead | null> {
  const r = await lockOp(host, dir, 'read');
  if (r.code === 4) return null;
  const [age, rest = ''] = splitOnce(r.stdout, '\n');
  const [ownerText, journal = ''] = splitOnce(rest, '\n@@journal\n');
  let owner: Owner | null = null;
  try {
    owner = JSON.parse(ownerText) as Owner;
  } catch {
    owner = null;
  }
  return { heartbeatAge: Number(age) || 0, owner, journal };
}

function splitOnce(s: string, sep: string): [string, string?] {
  const i = s.indexOf(sep);
  return i < 0 ? [s] : [s.slice(0, i), s.slice(i + sep.length)];
}
