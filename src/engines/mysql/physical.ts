import { DbreplError, messageOf } from '../../errors';
import { readFile, runChecked, runScript, statOwner } from '../../hosts/commands';
import { ownerOfDirectory, writeFile } from '../../hosts/files';
import type { Host, RunAs } from '../../hosts/host';
import { copyTimeoutMs, SERVICE_TIMEOUT_MS } from '../../hosts/limits';
import type { Pair, Server } from '../../model';
import { currentSignal } from '../../util/cancel';
import { pollUntil } from '../../util/poll';
import { CopyProgress } from '../../util/progress';
import type { Session, Step } from '../engine';
import { serviceArgv } from '../service';
import { replicationTls } from '../tls';
import { dataBytes, withClient } from './client';
import type { Dialect } from './dialect';
import { clientOptions, verifyHost } from './host-side';
import { CopyHost, inspectMysql, MyFacts } from './inspect';
import { optionsFile, restoreOptions, serverProcess, verifyServerReads, writeOptions } from './options';

/**
 * MariaDB's physical copy: `mariabackup --backup --stream=mbstream` of the running master,
 * unpacked by `mbstream -x` next to the slave's data directory and prepared there while the
 * slave keeps serving; then the slave is stopped, its data directory swapped for the copy
 * (the old one kept until the slave has caught up), started, and pointed at the master from
 * the GTID position the backup recorded.
 */

const majorMinor = (v: { major: number; minor: number }): string => `${v.major}.${v.minor}`;

/** Inspection; for plan and apply (session.probeHosts), a MariaDB server's host is asked what it offers for a physical copy. */
export async function inspectWithHost(server: Server, session: Session): Promise<MyFacts> {
  const facts = await inspectMysql(server, session);
  if (session.probeHosts && facts.version.flavour === 'mariadb') facts.copyHost = await probeCopyHost(server, facts, session);
  return facts;
}

async function probeCopyHost(server: Server, facts: MyFacts, session: Session): Promise<CopyHost> {
  const none: CopyHost = { error: null, label: '', bootId: '', netns: '', mariabackup: null, mbstream: false, openssl: false, datadirMountPoint: false, outside: [] };
  try {
    const host = await session.hosts.forServer(server);
    await verifyHost(host, server, facts);
    const hf = await host.facts();
    const out = await runChecked(
      host,
      [
        'sh',
        '-c',
        `command -v mbstream >/dev/null 2>&1 && echo mbstream
command -v openssl >/dev/null 2>&1 && echo openssl
command -v mariabackup >/dev/null 2>&1 && mariabackup --version 2>&1 | head -n 1
[ "$(stat -c %d -- "$1")" = "$(stat -c %d -- "$1/..")" ] || echo mountpoint`,
        'sh',
        facts.datadir,
      ],
      `the copy programs on ${host.label}`,
    );
    const version = /based on MariaDB server (\d+)\.(\d+)/.exec(out);
    return {
      ...none,
      outside: await filesOutsideDatadir(server, facts, session),
      label: host.label,
      bootId: hf.bootId,
      netns: hf.netns,
      mariabackup: version ? `${version[1]}.${version[2]}` : null,
      mbstream: /^mbstream$/m.test(out),
      openssl: /^openssl$/m.test(out),
      datadirMountPoint: /^mountpoint$/m.test(out),
    };
  } catch (err) {
    return { ...none, error: messageOf(err) };
  }
}

/** Master and slave on one host (one machine, one network namespace, one login): the stream is one pipeline there. */
export const oneHost = (a: CopyHost, b: CopyHost): boolean => a.label === b.label && a.bootId === b.bootId && a.netns === b.netns;

/**
 * Files the server keeps outside its data directory (redo and undo logs, system tablespace,
 * binary and relay logs, Aria's log): a swap of the data directory would leave them behind,
 * and the copy would start against them.
 */
async function filesOutsideDatadir(server: Server, facts: MyFacts, session: Session): Promise<string[]> {
  const names = ['innodb_log_group_home_dir', 'innodb_data_home_dir', 'innodb_undo_directory', 'log_bin_basename', 'relay_log_basename', 'aria_log_dir_path'];
  const rows = await withClient(session, server, (sql) => sql.query(`SHOW GLOBAL VARIABLES WHERE Variable_name IN (${names.map(() => '?').join(', ')})`, names));
  const dd = facts.datadir.replace(/\/+$/, '');
  const out: string[] = [];
  for (const r of rows) {
    const name = String(r.Variable_name ?? r.variable_name);
    const value = String(r.Value ?? r.value ?? '').trim();
    if (!value || value === '.' || value === './') continue;
    const abs = value.startsWith('/') ? value.replace(/\/+$/, '') : `${dd}/${value.replace(/^\.\//, '')}`.replace(/\/+$/, '');
    if (abs !== dd && !abs.startsWith(`${dd}/`)) out.push(`${name} = ${value}`);
  }
  return out;
}

export type CopyChoice = { method: 'physical' } | { method: 'logical'; why: string };

/** Pure: which copy an enable or resync uses, and why not the physical one. */
export function copyChoice(pair: Pair, m: MyFacts, s: MyFacts): CopyChoice {
  const logical = (why: string): CopyChoice => ({ method: 'logical', why });
  if (pair.copy === 'logical') return logical('the pair says copy: logical');
  if (m.version.flavour !== 'mariadb' || s.version.flavour !== 'mariadb') return logical('mariabackup copies MariaDB only; MySQL servers are copied by a dump');
  const mm = majorMinor(m.version);
  if (majorMinor(s.version) !== mm) return logical(`the master runs MariaDB ${mm} and the slave ${majorMinor(s.version)}: a physical copy needs one version`);
  const mh = m.copyHost;
  const sh = s.copyHost;
  if (!mh || !sh) return logical('the hosts were not asked (status only)');
  if (mh.error) return logical(`host commands cannot work on ${pair.master.ref}'s machine (${mh.error})`);
  if (sh.error) return logical(`host commands cannot work on ${pair.slave.ref}'s machine (${sh.error})`);
  if (mh.mariabackup !== mm) return logical(`${mh.label} (${pair.master.ref}) has ${mh.mariabackup ? `mariabackup ${mh.mariabackup}` : 'no mariabackup'}; the master runs ${mm} (install mariadb-backup ${mm} there)`);
  if (sh.mariabackup !== mm || !sh.mbstream) {
    return logical(`${sh.label} (${pair.slave.ref}) lacks ${sh.mbstream ? '' : 'mbstream and '}mariabackup ${mm} for unpacking and preparing the copy (install mariadb-backup ${mm} there)`);
  }
  if (sh.outside.length > 0) return logical(`${pair.slave.ref} keeps files outside its data directory (${sh.outside.join(', ')}): a swap of the data directory would leave them behind`);
  if (sh.datadirMountPoint) return logical(`${s.datadir} is a mount point: the slave's data directory cannot be swapped for the copy by a rename`);
  if (!oneHost(mh, sh) && replicationTls(pair.master) !== 'none') {
    return logical(`${pair.master.ref} and ${pair.slave.ref} are on different hosts and ${pair.master.ref} has tls: its CA and client files are written on the slave's host only, where mariabackup does not run`);
  }
  if (!oneHost(mh, sh) && (!mh.openssl || !sh.openssl)) {
    return logical(`${pair.master.ref} and ${pair.slave.ref} are on different hosts and ${!mh.openssl ? mh.label : sh.label} has no openssl, which carries the stream from host to host`);
  }
  if (!pair.slave.service && mh.bootId === sh.bootId) {
    return logical(`the slave must restart onto the copy and ${pair.slave.ref} has no service commands; the default (systemctl) would stop every MariaDB server of ${sh.label}, ${pair.master.ref} included: set service.stop and service.start`);
  }
  return { method: 'physical' };
}

export interface PhysicalState {
  stageMade: boolean;
  /** The master's data size at the copy (bounds the prepare too). */
  bytes: number;
  /** The backup's GTID position (mariabackup's xtrabackup_binlog_info). */
  gtid: string;
  optionsBeforeInit: string | null | undefined;
  initWritten: boolean;
  /** The inode of the slave's data directory before the swap (proves `.old` is the one this run moved). */
  inode: string;
  /** The swap began: the slave may be down, its data directory moved aside. */
  swapping: boolean;
  /** The slave had caught up on the copy and its previous data directory was being removed: nothing goes back. */
  discarding: boolean;
}

/** The slave's admin account, replayed at its first start on the copy (init_file), as the file's login needs it. */
const INIT_FILE = 'dbrepl-init.sql';

export function physicalPaths(datadir: string, stamp: string): { stage: string; old: string; init: string } {
  return { stage: `${datadir}.dbrepl-${stamp}.new`, old: `${datadir}.dbrepl-${stamp}.old`, init: `${datadir}/${INIT_FILE}` };
}

const ownerOf = async (host: Host, path: string): Promise<RunAs> => {
  const o = await statOwner(host, path);
  return { uid: o.uid, gid: o.gid };
};

/** The [mariabackup] option file for the backup: the master server's own option files, then the admin login. */
function backupOptions(defaultsArgs: string[], master: Server, tls: string[]): { file: string; first: 'defaults-file' | 'defaults-extra-file'; suffix: string[] } {
  const arg = (name: string): string | undefined => defaultsArgs.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const includes = [arg('defaults-file'), arg('defaults-extra-file')].filter((f): f is string => !!f).map((f) => `!include ${f}\n`);
  // Over TCP, never a socket: `localhost` would take the default socket, which on a shared host may be another server's.
  const at = /^localhost$/i.test(master.host) ? { host: '127.0.0.1', port: master.port } : master;
  const login = clientOptions(at, master.user ?? 'root', master.password ?? '', tls).replace('[client]', '[mariabackup]').replace(/^protocol=.*\n/m, '');
  const own = defaultsArgs.includes('--no-defaults') || arg('defaults-file');
  return { file: `${includes.join('')}${login}`, first: own ? 'defaults-file' : 'defaults-extra-file', suffix: defaultsArgs.filter((a) => a.startsWith('--defaults-group-suffix=')) };
}

/** Removes a directory dbrepl made next to the data directory, as the owner of the directory both are in, never through a link. */
async function removeBeside(host: Host, datadir: string, dir: string): Promise<void> {
  await runScript(host, '[ -L "$1" ] && { echo "$1 is a link" >&2; exit 1; }; rm -rf -- "$1"', [dir], `removing ${dir}`, { as: await ownerOfDirectory(host, datadir) });
}

async function serverDown(host: Host, s: MyFacts): Promise<boolean> {
  const pid = (await readFile(host, s.pidFile))?.trim();
  if (!pid || !/^\d+$/.test(pid)) return true;
  const comm = (await readFile(host, `/proc/${pid}/comm`))?.trim();
  return !comm || !/^(mariadbd|mysqld)$/.test(comm);
}

/**
 * The steps from the copy to the slave following the master; `before` are the steps both
 * copies share (the master's login, the slave's settings), `trailer()` the slave's admin account.
 */
export function physicalSteps(
  pair: Pair,
  m: MyFacts,
  s: MyFacts,
  d: Dialect,
  stamp: string,
  st: PhysicalState,
  trailer: () => string,
  change: { sql: string; values: unknown[] },
  changeText: string,
  masterTlsLines: string[],
  svc: { stop: string; start: string },
): Step[] {
  const { stage, old, init } = physicalPaths(s.datadir, stamp);
  const together = !!m.copyHost && !!s.copyHost && oneHost(m.copyHost, s.copyHost);
  const slaveHost = (session: Session): Promise<Host> => session.hosts.forServer(pair.slave);
  const start = async (session: Session, host: Host): Promise<void> => {
    await runChecked(host, serviceArgv(svc.start), `start command of ${pair.slave.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
    await pollUntil(`${pair.slave.ref} to accept connections`, 180_000, () => withClient(session, pair.slave, async () => true));
  };
  const stop = async (host: Host): Promise<void> => {
    await runChecked(host, serviceArgv(svc.stop), `stop command of ${pair.slave.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
    await pollUntil(`${pair.slave.ref} to stop (its pid file ${s.pidFile})`, 120_000, async () => ((await serverDown(host, s)) ? true : undefined));
  };
  return [
    {
      id: 'physical-copy',
      side: 'master host',
      title: 'stream a physical backup of the master into the slave host',
      text: `master host: mariabackup --backup --stream=mbstream (online, of ${pair.master.ref}, with its own option files), ${
        together
          ? 'piped'
          : `sent over TLS (openssl s_client to an openssl s_server listening on ${pair.slave.host} for this copy only; one-time certificates, each side pinned to the other's; SHA-256 of the stream compared on both ends)`
      } into mbstream -x into ${stage} on the slave's host, as the data directory's owner (the slave keeps serving)`,
      run: async (session) => {
        const mhost = await session.hosts.forServer(pair.master);
        const host = await slaveHost(session);
        await verifyHost(mhost, pair.master, m);
        // The stage and the unpacking happen on the slave's machine: proven before anything is made there.
        await verifyHost(host, pair.slave, s);
        const proc = await serverProcess(mhost, pair.master, m);
        const opts = backupOptions(proc.defaultsArgs, pair.master, masterTlsLines);
        const owner = await ownerOf(host, s.datadir);
        const parent = await ownerOfDirectory(host, s.datadir);
        st.stageMade = true;
        await session.checkpoint?.();
        // Made by the owner of the directory it is in, then given to the data directory's owner (never through a link).
        await runChecked(host, ['mkdir', '-m', '700', '--', stage], `creating ${stage}`, { as: parent });
        await runChecked(host, ['chown', '-h', '--', `${owner.uid}:${owner.gid}`, stage], `chown ${stage}`);
        const bytes = await dataBytes(session, pair.master);
        st.bytes = bytes;
        const meter = new CopyProgress(`${pair.name}: copy`, (l) => session.log.info(l), { total: bytes, estimated: true, everyMs: session.progressEveryMs });
        const stream = { stage, owner, opts, bytes, meter, timeoutMs: copyTimeoutMs(bytes, pair.copyTimeoutSeconds) };
        if (together) await streamOnOneHost(host, pair, m, stream);
        else await streamAcrossHosts(mhost, host, pair, m, stream);
        meter.finish();
      },
      undo: {
        text: `remove ${stage}`,
        run: async (session) => {
          if (!st.stageMade) return '';
          const host = await slaveHost(session);
          await removeBeside(host, s.datadir, stage);
          return '';
        },
      },
    },
    {
      id: 'prepare',
      side: 'slave host',
      title: 'prepare the copy',
      text: `slave host: mariabackup --prepare --target-dir=${stage} (as the data directory's owner); read the GTID position the backup recorded`,
      run: async (session) => {
        const host = await slaveHost(session);
        const owner = await ownerOf(host, s.datadir);
        await runChecked(host, ['mariabackup', `--defaults-file=${stage}/backup-my.cnf`, '--prepare', `--target-dir=${stage}`], `preparing ${stage}`, {
          as: owner,
          timeoutMs: copyTimeoutMs(st.bytes, pair.copyTimeoutSeconds),
        });
        const info = (await readFile(host, `${stage}/xtrabackup_binlog_info`, owner))?.trim() ?? '';
        const gtid = info.split(/\s+/)[2] ?? '';
        if (!/^\d+-\d+-\d+(,\d+-\d+-\d+)*$/.test(gtid)) {
          throw new DbreplError('STEP', `the backup of ${pair.master.ref} records no GTID position (xtrabackup_binlog_info: "${info}"); is binary logging on there?`);
        }
        st.gtid = gtid;
        await session.checkpoint?.();
      },
    },
    {
      id: 'init-file',
      side: 'slave host',
      title: "its admin account for the copy's first start",
      text: `slave host: write ${stage}/${INIT_FILE} (the slave's admin account, mode 600) and init_file = ${init} in ${optionsFile(pair.slave)}, checked to be read at its next start (the copy holds the master's accounts)`,
      run: async (session) => {
        const host = await slaveHost(session);
        const owner = await ownerOf(host, s.datadir);
        await writeFile(host, `${stage}/${INIT_FILE}`, `${trailer()}\n`, { owner, mode: '600' });
        if (st.optionsBeforeInit === undefined) st.optionsBeforeInit = await readFile(host, optionsFile(pair.slave));
        st.initWritten = true;
        await session.checkpoint?.();
        await writeOptions(host, pair.slave, s, { init_file: init });
        await verifyServerReads(host, pair.slave, s, { init_file: init });
      },
      undo: {
        text: `take init_file out of ${optionsFile(pair.slave)}`,
        run: async (session) => {
          if (!st.initWritten || st.optionsBeforeInit === undefined) return '';
          await restoreOptions(await slaveHost(session), pair.slave, s, st.optionsBeforeInit);
          return '';
        },
      },
    },
    {
      id: 'swap',
      side: 'slave',
      title: 'stop, swap its data directory for the copy, start',
      text: `slave: ${svc.stop}; move ${s.datadir} to ${old} and ${stage} to ${s.datadir}; ${svc.start}; wait until it accepts connections`,
      run: async (session) => {
        const host = await slaveHost(session);
        await verifyHost(host, pair.slave, s);
        const parent = await ownerOfDirectory(host, s.datadir);
        // Everything the move needs is checked while the slave still serves; the data directory's
        // inode is journalled, so an undo moves back only the directory this run moved aside.
        const inode = await runScript(
          host,
          `dd=$1; old=$2; stage=$3
for p in "$dd" "$stage"; do [ -d "$p" ] && [ ! -L "$p" ] || { echo "$p is not a directory" >&2; exit 1; }; done
[ ! -e "$old" ] && [ ! -L "$old" ] || { echo "$old already exists" >&2; exit 1; }
stat -c %i -- "$dd"`,
          [s.datadir, old, stage],
          `checking ${s.datadir} before the swap`,
          { as: parent },
        );
        st.inode = inode.trim();
        st.swapping = true;
        await session.checkpoint?.();
        await stop(host);
        // Only a stopped server's directory moves; files of its own the backup does not carry
        // (certificates, Debian's flag file) go with it.
        await runScript(
          host,
          `dd=$1; old=$2; stage=$3
for p in "$dd" "$stage"; do [ -d "$p" ] && [ ! -L "$p" ] || { echo "$p is not a directory" >&2; exit 1; }; done
[ ! -e "$old" ] && [ ! -L "$old" ] || { echo "$old already exists" >&2; exit 1; }
for f in "$dd"/*.pem "$dd"/debian-*.flag; do [ -f "$f" ] && [ ! -L "$f" ] && [ ! -e "$stage/\${f##*/}" ] && cp -p -- "$f" "$stage/"; done
mv -T -- "$dd" "$old"
mv -T -- "$stage" "$dd"`,
          [s.datadir, old, stage],
          `swapping ${s.datadir} for the copy`,
          { as: parent },
        );
        await start(session, host);
      },
      undo: {
        text: `stop it, put ${old} back as ${s.datadir}, start it`,
        run: async (session) => {
          if (!st.swapping) return '';
          if (st.discarding) return `${pair.slave.ref} had caught up on the copy and its previous data directory ${old} was being removed: it stays on the copy`;
          const host = await slaveHost(session);
          const parent = await ownerOfDirectory(host, s.datadir);
          // A server still starting may have no pid file yet: one that answers is running too.
          const answers = await withClient(session, pair.slave, async () => true).catch(() => false);
          if (!(await serverDown(host, s)) || answers) await stop(host);
          const moved = await runScript(
            host,
            `dd=$1; old=$2; stage=$3; ino=$4
[ -d "$old" ] && [ ! -L "$old" ] || exit 0
[ "$(stat -c %i -- "$old")" = "$ino" ] || { echo "$old is not the data directory this run moved aside (inode $ino); nothing was moved back" >&2; exit 1; }
if [ -e "$dd" ]; then [ ! -e "$stage" ] || { echo "$stage exists" >&2; exit 1; }; mv -T -- "$dd" "$stage"; fi
mv -T -- "$old" "$dd"
echo moved`,
            [s.datadir, old, stage, st.inode],
            `putting ${old} back`,
            { as: parent },
          );
          // Its own data directory has no init file: a server told to read one would not start.
          if (st.initWritten && st.optionsBeforeInit !== undefined) await restoreOptions(host, pair.slave, s, st.optionsBeforeInit);
          await start(session, host);
          return moved.includes('moved') ? `${pair.slave.ref} runs on its own data directory again` : `${pair.slave.ref} was started again`;
        },
      },
    },
    {
      id: 'follow',
      side: 'slave',
      title: 'follow the master from the backup position',
      text: `slave: take init_file out of ${optionsFile(pair.slave)} and remove ${init}; ${d.stopReplica}; ${d.resetReplicaAll}${s.logBin ? `; ${d.resetBinlogs}` : ' (its binary logging is off, so no binary logs are reset)'}; SET GLOBAL gtid_slave_pos = '<the backup's GTID position>'; ALTER EVENT ... ${d.disableEventOnReplica} for every enabled event; ${changeText}; ${d.startReplica}`,
      run: async (session) => {
        const host = await slaveHost(session);
        if (st.optionsBeforeInit !== undefined) await restoreOptions(host, pair.slave, s, st.optionsBeforeInit);
        await runChecked(host, ['rm', '-f', '--', init], `removing ${init}`, { as: await ownerOf(host, s.datadir) });
        await withClient(session, pair.slave, async (sql) => {
          await sql.query('SET SESSION sql_log_bin = 0');
          for (const q of [d.stopReplica, d.resetReplicaAll, ...(s.logBin ? [d.resetBinlogs] : [])]) await sql.query(q);
          await sql.query('SET GLOBAL gtid_slave_pos = ?', [st.gtid]);
          const events = await sql.query(`SELECT EVENT_SCHEMA AS s, EVENT_NAME AS n FROM information_schema.EVENTS WHERE STATUS = 'ENABLED'`);
          for (const e of events) await sql.query(`ALTER EVENT \`${String(e.s).replace(/`/g, '``')}\`.\`${String(e.n).replace(/`/g, '``')}\` ${d.disableEventOnReplica}`);
          await sql.query(change.sql, change.values);
          await sql.query(d.startReplica);
        });
      },
    },
  ];
}

/**
 * After the slave caught up: the old data directory goes (its databases are in the kept dump,
 * if it had any). From here nothing is rolled back (the journal says so before the removal
 * begins): a half-removed directory must never be moved back. A removal that fails is said,
 * not a failure of the enable.
 */
export function discardOldStep(pair: Pair, s: MyFacts, stamp: string, kept: string | null, st: PhysicalState): Step {
  const { old } = physicalPaths(s.datadir, stamp);
  return {
    id: 'discard-old',
    side: 'slave host',
    title: 'remove its previous data directory',
    text: `slave host: remove ${old}${kept ? ` (its databases are in ${kept})` : ' (it held no database of its own)'}`,
    run: async (session) => {
      st.discarding = true;
      await session.checkpoint?.();
      try {
        const host = await session.hosts.forServer(pair.slave);
        await removeBeside(host, s.datadir, old);
      } catch (err) {
        session.log.warn(`${pair.name}: the slave replicates, but its previous data directory ${old} could not be removed (${messageOf(err)}); remove it by hand`);
      }
    },
  };
}

interface Stream {
  stage: string;
  owner: RunAs;
  opts: ReturnType<typeof backupOptions>;
  bytes: number;
  meter: CopyProgress;
  timeoutMs: number;
}

const BACKUP = `mariabackup --"$first"="$tmp/backup.cnf" "$@" --backup --stream=mbstream --target-dir="$tmp" --datadir="$datadir"`;
const UNPACK = `setpriv --reuid="\${owner%:*}" --regid="\${owner#*:}" --init-groups -- mbstream -x -C "$stage"`;
const meterLine = (meter: CopyProgress) => (line: string): void => {
  const x = /^(\d+) bytes/.exec(line);
  if (x) meter.update(Number(x[1]));
};

/** Master and slave on one host: one pipeline there. */
async function streamOnOneHost(host: Host, pair: Pair, m: MyFacts, x: Stream): Promise<void> {
  await runScript(
    host,
    `stage=$1; datadir=$2; owner=$3; first=$4; shift 4
umask 077
[ -d "$stage" ] && [ ! -L "$stage" ] || { echo "$stage is not a directory" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
printf '%s' "$cnf" > "$tmp/backup.cnf"
${BACKUP} | dd bs=1M status=progress | ${UNPACK}`,
    [x.stage, m.datadir, `${x.owner.uid}:${x.owner.gid}`, x.opts.first, ...x.opts.suffix],
    `streaming a physical backup of ${pair.master.ref} into ${x.stage}`,
    { secrets: { cnf: x.opts.file }, timeoutMs: x.timeoutMs, progress: meterLine(x.meter) },
  );
}

/** A one-time self-signed certificate and its key, made on `host` (the key never stays on its disk). */
async function oneTimeCertificate(host: Host): Promise<{ cert: string; key: string }> {
  const out = await runScript(
    host,
    `tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=dbrepl-copy -days 1 -keyout "$tmp/key" -out "$tmp/crt" 2>/dev/null
cat -- "$tmp/crt" "$tmp/key"`,
    [],
    `a one-time TLS certificate on ${host.label}`,
  );
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(out)?.[0];
  const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----\n/.exec(out)?.[0];
  if (!cert || !key) throw new DbreplError('STEP', `openssl on ${host.label} made no certificate`);
  return { cert, key };
}

/**
 * Master and slave on two hosts: the slave's host listens (openssl s_server, one connection,
 * on the slave's address and a free port) and unpacks what arrives; the master's host sends
 * the backup to it (openssl s_client). Each side has a one-time certificate and accepts only
 * the other's; the SHA-256 of the stream is compared on both ends. Nothing passes through
 * the runner but the certificates and the port.
 */
async function streamAcrossHosts(mhost: Host, shost: Host, pair: Pair, m: MyFacts, x: Stream): Promise<void> {
  const [mine, theirs] = await Promise.all([oneTimeCertificate(mhost), oneTimeCertificate(shost)]);
  const stop = new AbortController();
  const outer = currentSignal();
  const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal;
  let port = 0;
  let slaveSum = '';
  let masterSum = '';
  let ready: () => void = () => undefined;
  const listening = new Promise<void>((resolve) => (ready = resolve));
  const bind = pair.slave.host.includes(':') ? `[${pair.slave.host}]` : pair.slave.host;
  const receiver = runScript(
    shost,
    `stage=$1; owner=$2; bind=$3
umask 077
[ -d "$stage" ] && [ ! -L "$stage" ] || { echo "$stage is not a directory" >&2; exit 1; }
tmp=$(mktemp -d)
sp=''
trap '[ -z "$sp" ] || kill "$sp" 2>/dev/null; rm -rf -- "$tmp"' EXIT
printf '%s' "$crt" > "$tmp/crt"; printf '%s' "$key" > "$tmp/key"; printf '%s' "$peer" > "$tmp/peer.crt"
port=''
for p in $(shuf -i 20000-59999 -n 50); do
  grep -qiE ":$(printf %04X "$p") [0-9A-F]+:[0-9A-F]{4} " /proc/net/tcp /proc/net/tcp6 2>/dev/null || { port=$p; break; }
done
[ -n "$port" ] || { echo "no free port on this host" >&2; exit 1; }
hex=$(printf %04X "$port")
( for i in $(seq 1 150); do
    if grep -qiE ":$hex [0-9A-F]+:0000 0A" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then echo "DBREPL-LISTENING $port" >&2; exit 0; fi
    sleep 0.1
  done ) &
# s_server ends at EOF on its own input: give it one that never ends (stopped on exit).
exec 3< <(exec sleep 2147483647)
sp=$!
openssl s_server -accept "$bind:$port" -naccept 1 -cert "$tmp/crt" -key "$tmp/key" -CAfile "$tmp/peer.crt" -Verify 1 -verify_return_error -quiet <&3 2>"$tmp/tls.err" \
  | tee >(sha256sum > "$tmp/sum") | ${UNPACK} || { cat -- "$tmp/tls.err" >&2; exit 1; }
for i in $(seq 1 100); do [ -s "$tmp/sum" ] && break; sleep 0.1; done
echo "DBREPL-SUM $(cut -c1-64 -- "$tmp/sum")" >&2`,
    [x.stage, `${x.owner.uid}:${x.owner.gid}`, bind],
    `receiving the backup of ${pair.master.ref} into ${x.stage} on ${shost.label}`,
    {
      secrets: { crt: theirs.cert, key: theirs.key, peer: mine.cert },
      timeoutMs: x.timeoutMs,
      signal,
      progress: (line) => {
        const l = /^DBREPL-LISTENING (\d+)/.exec(line);
        if (l) {
          port = Number(l[1]);
          ready();
        }
        const sum = /^DBREPL-SUM ([0-9a-f]{64})/.exec(line);
        if (sum) slaveSum = sum[1]!;
      },
    },
  );
  // The receiver failing before it listens ends the wait too.
  const early = receiver.then(() => {
    throw new DbreplError('STEP', `the receiver on ${shost.label} ended before it listened`);
  });
  early.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DbreplError('STEP', `the receiver on ${shost.label} did not listen within 20 s`)), 20_000);
  });
  late.catch(() => undefined);
  try {
    await Promise.race([listening, early, late]);
    clearTimeout(timer);
    await runScript(
      mhost,
      `first=$1; datadir=$2; connect=$3; shift 3
umask 077
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
printf '%s' "$cnf" > "$tmp/backup.cnf"; printf '%s' "$crt" > "$tmp/crt"; printf '%s' "$key" > "$tmp/key"; printf '%s' "$peer" > "$tmp/peer.crt"
${BACKUP} | dd bs=1M status=progress | tee >(sha256sum > "$tmp/sum") \
  | openssl s_client -connect "$connect" -cert "$tmp/crt" -key "$tmp/key" -CAfile "$tmp/peer.crt" -verify_return_error -quiet -no_ign_eof -nocommands >/dev/null 2>"$tmp/tls.err" \
  || { cat -- "$tmp/tls.err" >&2; exit 1; }
for i in $(seq 1 100); do [ -s "$tmp/sum" ] && break; sleep 0.1; done
echo "DBREPL-SUM $(cut -c1-64 -- "$tmp/sum")" >&2`,
      [x.opts.first, m.datadir, `${bind}:${port}`, ...x.opts.suffix],
      `streaming a physical backup of ${pair.master.ref} from ${mhost.label} to ${pair.slave.host}:${port}`,
      {
        secrets: { cnf: x.opts.file, crt: mine.cert, key: mine.key, peer: theirs.cert },
        timeoutMs: x.timeoutMs,
        progress: (line) => {
          meterLine(x.meter)(line);
          const sum = /^DBREPL-SUM ([0-9a-f]{64})/.exec(line);
          if (sum) masterSum = sum[1]!;
        },
      },
    );
    await receiver;
  } catch (err) {
    stop.abort();
    await receiver.catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
  if (!masterSum || masterSum !== slaveSum) {
    throw new DbreplError('STEP', `the backup of ${pair.master.ref} did not arrive whole on ${shost.label} (SHA-256 sent ${masterSum || 'unknown'}, received ${slaveSum || 'unknown'})`);
  }
}
