import { DbreplError } from '../../errors';
import { readFile, runChecked, runScript } from '../../hosts/commands';
import { CopyProgress } from '../../util/progress';
import type { Host, RunAs } from '../../hosts/host';
import type { Server } from '../../model';
import type { Dialect } from './dialect';
import type { MyFacts } from './inspect';

/**
 * The client programs, run on the slave's host. Logins reach them as [client] option
 * files on a pipe (`--defaults-file=<(...)`), from shell variables the script read from
 * stdin: never in argv, never in the environment of a program.
 */

/** A [client] option file for one login, with its TLS lines (see Dialect.clientTls). */
export function clientOptions(server: { host: string; port: number }, user: string, password: string, tls: string[] = []): string {
  const q = (v: string | number): string => `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return `[client]\nhost=${q(server.host)}\nport=${q(server.port)}\nuser=${q(user)}\npassword=${q(password)}\nprotocol=TCP\n${tls.map((l) => `${l}\n`).join('')}`;
}

/** A server's admin login for the programs, with the TLS lines its `tls` asks for. */
export interface Login {
  server: Server;
  tls: string[];
}

const adminOptions = (l: Login): string => clientOptions(l.server, l.server.user ?? 'root', l.server.password ?? '', l.tls);

/** The replication login, tried from the slave's host exactly as the slave will use it. */
export async function checkLoginFromHost(host: Host, d: Dialect, master: Login, user: string, password: string): Promise<void> {
  await runScript(host, '"$1" --defaults-file=<(printf %s "$cnf") --connect-timeout=10 -e "SELECT 1" >/dev/null', [d.clientProgram], `the replication login ${user} to ${master.server.ref} from ${host.label}`, {
    secrets: { cnf: clientOptions(master.server, user, password, master.tls) },
  });
}

/** The arguments of the dump of the slave's own data. MySQL: no GTID_PURGED, so it loads back onto a server with GTIDs. */
export function ownDumpArgs(d: Dialect): string[] {
  return ['--single-transaction', '--all-databases', '--routines', '--events', '--triggers', '--hex-blob', '--quick', ...(d.version.flavour === 'mysql' ? ['--set-gtid-purged=OFF'] : [])];
}

/**
 * A full dump of the slave as it is now, gzipped to `file` (which must not exist). The file
 * is created exclusively under an unpredictable name and renamed when complete, by `as`
 * (the owner of the directory it goes to).
 */
export async function dumpToFile(host: Host, d: Dialect, slave: Login, file: string, timeoutMs: number, as?: RunAs): Promise<void> {
  await runScript(
    host,
    `out=$1; dump=$2; shift 2
umask 077
[ ! -e "$out" ] && [ ! -L "$out" ] || { echo "$out already exists" >&2; exit 1; }
tmp=$(mktemp -- "$(dirname -- "$out")/.$(basename -- "$out").XXXXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT
"$dump" --defaults-file=<(printf %s "$cnf") "$@" | gzip -1 > "$tmp"
# ln never replaces what is there (mv -n would skip silently on older coreutils).
ln -- "$tmp" "$out"`,
    [file, d.dumpProgram, ...ownDumpArgs(d)],
    `dumping ${slave.server.ref} to ${file}`,
    { secrets: { cnf: adminOptions(slave) }, timeoutMs, as },
  );
}

/**
 * The copy: an online, consistent dump of the master piped straight into the slave, run on
 * the slave's host (nothing passes through the runner). The session does not write the
 * slave's binary log; `trailer` runs last in the same session (it restores the slave's
 * admin account, which the master's `mysql` schema would otherwise replace).
 */
export async function streamCopy(host: Host, d: Dialect, md: Dialect, master: Login, slave: Login, trailer: string, timeoutMs: number, meter?: CopyProgress): Promise<void> {
  await runScript(
    host,
    // A failed dump must fail the pipeline (and must not be followed by the trailer). dd counts
    // the bytes through the pipe: its meter (`N bytes ... copied`, every second) goes to stderr.
    `dump=$1; client=$2; shift 2
{ printf 'SET SESSION sql_log_bin=0;\\n'; "$dump" --defaults-file=<(printf %s "$src") "$@" || exit 1; printf '%s\\n' "$trailer"; } | dd bs=1M status=progress | "$client" --defaults-file=<(printf %s "$dst") --binary-mode`,
    [md.dumpProgram, d.clientProgram, ...md.dumpArgs],
    `copying ${master.server.ref} into ${slave.server.ref}`,
    {
      secrets: { src: adminOptions(master), dst: adminOptions(slave), trailer },
      timeoutMs,
      progress: (line) => {
        const m = /^(\d+) bytes/.exec(line);
        if (m) meter?.update(Number(m[1]));
      },
    },
  );
  meter?.finish();
}

/** Loads the slave's own dump back (after a failed copy). */
export async function restoreFromFile(host: Host, d: Dialect, slave: Login, file: string, trailer: string, timeoutMs: number): Promise<void> {
  await runScript(
    host,
    `in=$1; client=$2
{ printf 'SET SESSION sql_log_bin=0;\\n'; gunzip -c -- "$in" || exit 1; printf '%s\\n' "$trailer"; } | "$client" --defaults-file=<(printf %s "$dst") --binary-mode`,
    [file, d.clientProgram],
    `restoring ${slave.server.ref} from ${file}`,
    { secrets: { dst: adminOptions(slave), trailer }, timeoutMs },
  );
}

/** The client programs the copy needs are on the slave's host. */
export async function checkPrograms(host: Host, programs: string[]): Promise<void> {
  // One command for all of them.
  const r = await host.run(['/bin/sh', '-c', 'for p in "$@"; do command -v "$p" >/dev/null 2>&1 || printf "%s\n" "$p"; done', 'sh', ...programs]);
  const missing = r.stdout.split('\n').filter(Boolean);
  if (missing.length > 0) throw new DbreplError('STEP', `${missing.join(', ')} not found on ${host.label}; install the ${missing.length > 1 ? 'clients' : 'client'} there`);
}

/**
 * Host commands for a server must run where it runs: the server's own host name must be
 * this host's, and the pid in its pid file must be a live mysqld/mariadbd here.
 */
export async function verifyHost(host: Host, server: Server, facts: MyFacts): Promise<void> {
  const here = (await runChecked(host, ['uname', '-n'], 'uname')).trim();
  const pid = (await readFile(host, facts.pidFile))?.trim();
  const comm = pid ? (await readFile(host, `/proc/${pid}/comm`))?.trim() : undefined;
  if (here !== facts.hostname || !comm || !/^(mariadbd|mysqld)$/.test(comm)) {
    throw new DbreplError('STEP', `host commands for ${server.ref} would run on ${host.label} (${here}), which does not run this server (it reports host ${facts.hostname}, pid file ${facts.pidFile}); run dbrepl on the server's own host`);
  }
}
