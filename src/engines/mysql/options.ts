import * as path from 'node:path';
import { DbreplError } from '../../errors';
import { readFile, runChecked } from '../../hosts/commands';
import { writableTarget, writeFile } from '../../hosts/files';
import type { Host, RunAs } from '../../hosts/host';
import type { Server } from '../../model';
import type { Version } from './dialect';
import type { MyFacts } from './inspect';
import { DEFAULT_OPTIONS_FILE } from './state';

/**
 * MariaDB has no SET PERSIST: settings that must survive a restart (read_only, server_id,
 * log_bin) go into one option file the tool owns. A file the server cannot read is
 * skipped silently at its start (mariadbd runs as `mysql`; a root-only file is not read),
 * so the tool checks what the server will read the way the server reads it: as the
 * server's own user, through my_print_defaults, from the option files the server was
 * started with.
 */

export const OPTIONS_HEADER = '# Written by dbrepl';

export const optionsFile = (server: Server): string => server.optionsFile ?? DEFAULT_OPTIONS_FILE;

/** The running server as its host sees it: who it runs as and how it was told to read option files. */
export interface ServerProcess {
  user: RunAs;
  /** --no-defaults, --defaults-file, --defaults-extra-file, --defaults-group-suffix from its command line. */
  defaultsArgs: string[];
}

export async function serverProcess(host: Host, server: Server, facts: MyFacts): Promise<ServerProcess> {
  const pid = (await readFile(host, facts.pidFile))?.trim();
  if (!pid || !/^\d+$/.test(pid)) throw new DbreplError('STEP', `cannot read the pid of ${server.ref} from ${facts.pidFile} on ${host.label}`);
  const [uid, gid] = (await runChecked(host, ['stat', '-c', '%u %g', '--', `/proc/${pid}`], `the user of ${server.ref}`)).trim().split(' ').map(Number);
  const cmdline = (await readFile(host, `/proc/${pid}/cmdline`)) ?? '';
  const defaultsArgs = cmdline.split('\0').filter((a) => /^--(no-defaults$|defaults-file=|defaults-extra-file=|defaults-group-suffix=)/.test(a));
  return { user: { uid: uid!, gid: gid! }, defaultsArgs };
}

function groups(v: Version): string[] {
  const mm = `${v.major}.${v.minor}`;
  return v.flavour === 'mariadb'
    ? ['mysqld', 'server', `mysqld-${mm}`, 'mariadb', `mariadb-${mm}`, 'mariadbd', `mariadbd-${mm}`, 'client-server', 'galera']
    : ['mysqld', 'server', `mysqld-${mm}`];
}

const norm = (v: string): string => {
  const l = v.trim().toLowerCase();
  return l === 'on' || l === 'true' || l === 'yes' ? '1' : l === 'off' || l === 'false' || l === 'no' ? '0' : l;
};

/** The options the server will read at its next start, read as the server's own user; later files win. */
export async function optionsAsServerReads(host: Host, server: Server, facts: MyFacts): Promise<{ values: Map<string, string>; uid: number }> {
  const proc = await serverProcess(host, server, facts);
  const out = await runChecked(host, ['my_print_defaults', ...proc.defaultsArgs, ...groups(facts.version)], `my_print_defaults for ${server.ref}`, { as: proc.user });
  const values = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(line.trim());
    if (m) values.set(m[1]!.replace(/-/g, '_'), norm(m[2] ?? '1'));
  }
  return { values, uid: proc.user.uid };
}

/** Option files and directories the server reads (its `!include`/`!includedir` lines, followed as its user). */
async function includedPaths(host: Host, server: Server, facts: MyFacts): Promise<{ files: Set<string>; dirs: Set<string>; uid: number }> {
  const proc = await serverProcess(host, server, facts);
  const arg = (name: string): string | undefined => proc.defaultsArgs.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const queue = proc.defaultsArgs.includes('--no-defaults') ? [] : arg('defaults-file') ? [arg('defaults-file')!] : ['/etc/my.cnf', '/etc/mysql/my.cnf'];
  if (arg('defaults-extra-file')) queue.push(arg('defaults-extra-file')!);
  const files = new Set<string>();
  const dirs = new Set<string>();
  const readAs = async (argv: string[]): Promise<string | null> => {
    const r = await host.run(argv, { as: proc.user });
    return r.code === 0 ? r.stdout : null;
  };
  while (queue.length > 0 && files.size < 200) {
    const file = queue.shift()!;
    if (files.has(file)) continue;
    files.add(file);
    const text = await readAs(['cat', '--', file]);
    for (const line of (text ?? '').split('\n')) {
      const inc = /^\s*!include\s+(.+?)\s*$/.exec(line);
      const dir = /^\s*!includedir\s+(.+?)\s*$/.exec(line);
      if (inc) queue.push(inc[1]!);
      if (dir) {
        const d = dir[1]!.replace(/\/+$/, '');
        dirs.add(d);
        const list = await readAs(['find', d, '-maxdepth', '1', '-name', '*.cnf']);
        for (const f of (list ?? '').split('\n').filter(Boolean).sort()) queue.push(f);
      }
    }
  }
  return { files, dirs, uid: proc.user.uid };
}

/**
 * The plan-time checks for an option file the tool is about to write: its directory
 * exists, it is not a link (unless follow_symlinks), it is the tool's own, and the server
 * reads it (it is in a directory the server's configuration includes).
 */
export async function checkOptionsFile(host: Host, server: Server, facts: MyFacts): Promise<void> {
  const file = optionsFile(server);
  const dir = path.dirname(file);
  if ((await host.run(['test', '-d', dir])).code !== 0) {
    throw new DbreplError('STEP', `${dir} does not exist on ${host.label}: set options_file for ${server.ref} to a file its server reads (e.g. in an !includedir directory)`);
  }
  await writableTarget(host, file, server.followSymlinks);
  const current = await readFile(host, file);
  if (current && !current.startsWith(OPTIONS_HEADER)) {
    throw new DbreplError('STEP', `${file} on ${host.label} exists and was not written by dbrepl; options_file must name a file of dbrepl's own (one your server includes), so nothing else in it is lost`);
  }
  const read = await includedPaths(host, server, facts);
  if (!read.files.has(file) && !read.dirs.has(dir)) {
    const where = read.dirs.size > 0 ? `directories it includes: ${[...read.dirs].join(', ')}` : 'it includes no directory';
    throw new DbreplError('STEP', `${server.ref} does not read ${file} (its option files, read as uid ${read.uid}: ${[...read.files].join(', ') || 'none'}; ${where}); set options_file to a file in a directory the server includes`);
  }
}

/** Writes settings into the tool's option file, owned by the data directory's owner and readable by the server. */
export async function writeOptions(host: Host, server: Server, facts: MyFacts, settings: Record<string, string | number>): Promise<void> {
  const file = optionsFile(server);
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
  const owner = await dataDirOwner(host, facts);
  await writeFile(host, file, `${OPTIONS_HEADER} for ${server.ref}: settings that must survive a restart.\n[mysqld]\n${body}\n`, {
    owner,
    mode: '644',
    reown: true,
    followSymlinks: server.followSymlinks,
  });
}

/** Puts the option file back as it was before this run (or removes it if there was none). */
export async function restoreOptions(host: Host, server: Server, facts: MyFacts, before: string | null): Promise<void> {
  const file = optionsFile(server);
  if (before === null) {
    await runChecked(host, ['rm', '-f', '--', file], `removing ${file}`);
    return;
  }
  await writeFile(host, file, before, { owner: await dataDirOwner(host, facts), mode: '644', reown: true, followSymlinks: server.followSymlinks });
}

async function dataDirOwner(host: Host, facts: MyFacts): Promise<RunAs> {
  const [uid, gid] = (await runChecked(host, ['stat', '-c', '%u %g', '--', facts.datadir], `stat ${facts.datadir}`)).trim().split(' ').map(Number);
  return { uid: uid!, gid: gid! };
}

/**
 * The settings as the server will read them at its next start: each must be in force then,
 * not only in memory. Throws naming what the server would read instead.
 */
export async function verifyServerReads(host: Host, server: Server, facts: MyFacts, settings: Record<string, string | number>): Promise<void> {
  const read = await optionsAsServerReads(host, server, facts);
  const wrong = Object.entries(settings).filter(([k, v]) => read.values.get(k) !== norm(String(v)));
  if (wrong.length > 0) {
    const what = wrong.map(([k, v]) => `${k}=${v} (it would read ${read.values.has(k) ? read.values.get(k) : 'nothing'})`).join(', ');
    throw new DbreplError('STEP', `after a restart ${server.ref} would not have ${what}: its option files, read as the server's user (uid ${read.uid}), do not carry it; check that ${optionsFile(server)} is readable by that user and in a directory its configuration includes`);
  }
}
