import { DbreplError } from '../../errors';
import { Host, readFile, runChecked, writeFile } from '../../hosts/host';
import type { Server } from '../../topology';
import type { Dialect } from './dialect';
import type { MyFacts } from './inspect';

/** A [client] option file for one login, given to the programs through a pipe (never argv). */
export function clientOptions(server: { host: string; port: number }, user: string, password: string): string {
  const q = (v: string | number): string => `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return `[client]\nhost=${q(server.host)}\nport=${q(server.port)}\nuser=${q(user)}\npassword=${q(password)}\nprotocol=TCP\n`;
}

const BASH = (script: string, ...args: string[]): string[] => ['bash', '-c', `set -o pipefail\n${script}`, 'bash', ...args];

/** The replication login, tried from the slave's host exactly as the slave will use it. */
export async function checkLoginFromHost(host: Host, d: Dialect, master: Server, user: string, password: string): Promise<void> {
  await runChecked(host, BASH('"$DBREPL_CLIENT" --defaults-file=<(printf %s "$DBREPL_CNF") --connect-timeout=10 -e "SELECT 1" >/dev/null'), `the replication login ${user} to ${master.ref} from ${host.label}`, {
    env: { DBREPL_CLIENT: d.clientProgram, DBREPL_CNF: clientOptions(master, user, password) },
  });
}

/** A full dump of the slave as it is now, gzipped next to its data directory. */
export async function dumpToFile(host: Host, d: Dialect, slave: Server, file: string): Promise<void> {
  // MySQL: no GTID_PURGED in it, so it can be loaded back onto a server that has GTIDs already.
  const args = ['--single-transaction', '--all-databases', '--routines', '--events', '--triggers', '--hex-blob', '--quick', ...(d.version.flavour === 'mysql' ? ['--set-gtid-purged=OFF'] : [])];
  await runChecked(
    host,
    BASH('umask 077; trap \'rm -f "$DBREPL_OUT.tmp"\' EXIT; "$DBREPL_DUMP" --defaults-file=<(printf %s "$DBREPL_CNF") "$@" | gzip -1 > "$DBREPL_OUT.tmp" && mv -f "$DBREPL_OUT.tmp" "$DBREPL_OUT"', ...args),
    `dumping ${slave.ref} to ${file}`,
    { env: { DBREPL_DUMP: d.dumpProgram, DBREPL_CNF: clientOptions(slave, slave.user ?? 'root', slave.password ?? ''), DBREPL_OUT: file } },
  );
}

/**
 * The copy: an online, consistent dump of the master piped straight into the slave, run on
 * the slave's host (nothing passes through the runner). The session does not write the
 * slave's binary log; `trailer` runs last in the same session (it restores the slave's
 * admin account, which the master's `mysql` schema would otherwise replace).
 */
export async function streamCopy(host: Host, d: Dialect, master: Server, slave: Server, trailer: string): Promise<void> {
  await runChecked(
    host,
    BASH(
      // A failed dump must fail the pipeline (and must not be followed by the trailer).
      '{ printf "SET SESSION sql_log_bin=0;\\n"; "$DBREPL_DUMP" --defaults-file=<(printf %s "$DBREPL_SRC") "$@" || exit 1; printf "%s\\n" "$DBREPL_TRAILER"; } | "$DBREPL_CLIENT" --defaults-file=<(printf %s "$DBREPL_DST") --binary-mode',
      ...d.dumpArgs,
    ),
    `copying ${master.ref} into ${slave.ref}`,
    {
      env: {
        DBREPL_DUMP: d.dumpProgram,
        DBREPL_CLIENT: d.clientProgram,
        DBREPL_SRC: clientOptions(master, master.user ?? 'root', master.password ?? ''),
        DBREPL_DST: clientOptions(slave, slave.user ?? 'root', slave.password ?? ''),
        DBREPL_TRAILER: trailer,
      },
    },
  );
}

/** Loads the slave's own dump back (after a failed copy). */
export async function restoreFromFile(host: Host, d: Dialect, slave: Server, file: string, trailer: string): Promise<void> {
  await runChecked(
    host,
    BASH('{ printf "SET SESSION sql_log_bin=0;\\n"; gunzip -c "$DBREPL_IN" || exit 1; printf "%s\\n" "$DBREPL_TRAILER"; } | "$DBREPL_CLIENT" --defaults-file=<(printf %s "$DBREPL_DST") --binary-mode'),
    `restoring ${slave.ref} from ${file}`,
    { env: { DBREPL_CLIENT: d.clientProgram, DBREPL_DST: clientOptions(slave, slave.user ?? 'root', slave.password ?? ''), DBREPL_IN: file, DBREPL_TRAILER: trailer } },
  );
}

const OPTIONS_HEADER = '# Written by dbrepl';

/** Options that must survive a restart (MariaDB has no SET PERSIST): one file dbrepl owns. */
export async function writeOptions(host: Host, server: Server, file: string, settings: Record<string, string | number>): Promise<void> {
  const dir = file.replace(/\/[^/]*$/, '') || '/';
  if ((await host.run(['test', '-d', dir])).code !== 0) {
    throw new DbreplError('STEP', `${dir} does not exist on ${host.label}: set options_file for ${server.ref} to a file its server reads (e.g. in an !includedir directory)`);
  }
  const current = (await readFile(host, file)) ?? '';
  if (current && !current.startsWith(OPTIONS_HEADER)) {
    throw new DbreplError('STEP', `${file} on ${host.label} exists and was not written by dbrepl; options_file must name a file of dbrepl's own (one your server includes), so nothing else in it is lost`);
  }
  const values = new Map<string, string>();
  for (const line of current.split('\n')) {
    const m = /^\s*([a-z_-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) values.set(m[1]!.replace(/-/g, '_'), m[2]!);
  }
  for (const [k, v] of Object.entries(settings)) values.set(k, String(v));
  const body = [...values].map(([k, v]) => `${k} = ${v}`).join('\n');
  await writeFile(host, file, `${OPTIONS_HEADER} for ${server.ref}: settings that must survive a restart.\n[mysqld]\n${body}\n`);
}

/**
 * Host commands for a server must run where it runs: the server's own host name must be
 * this host's, and the pid in its pid file must be a live mysqld/mariadbd here.
 */
export async function verifyHost(host: Host, server: Server, facts: MyFacts, hostname: string): Promise<void> {
  const here = (await runChecked(host, ['uname', '-n'], 'uname')).trim();
  const pid = (await readFile(host, facts.pidFile))?.trim();
  const comm = pid ? (await readFile(host, `/proc/${pid}/comm`))?.trim() : undefined;
  if (here !== hostname || !comm || !/^(mariadbd|mysqld)$/.test(comm)) {
    throw new DbreplError('STEP', `host commands for ${server.ref} would run on ${host.label} (${here}), which does not run this server (it reports host ${hostname}, pid file ${facts.pidFile}); run dbrepl on the server's own host`);
  }
}
