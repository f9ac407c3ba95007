import * as path from 'node:path';
import { DbreplError, messageOf } from '../../errors';
import { Host, pathExists, readFile, runChecked, writeFile } from '../../hosts/host';
import type { Server } from '../../topology';
import { humanBytes } from '../../util/bytes';
import type { PgFacts } from './inspect';
import { service, serviceArgv } from './steps';

/**
 * Host commands for a server must run where that server runs. postmaster.pid in its data
 * directory names the port (line 4) and the start time (line 3): both must match what the
 * server itself reports (the time within seconds), else the commands would stop, move or edit another server.
 */
export async function verifyHost(host: Host, server: Server, facts: PgFacts): Promise<void> {
  const pidFile = `${facts.dataDirectory}/postmaster.pid`;
  const text = await readFile(host, pidFile);
  const lines = text?.split('\n') ?? [];
  // The pid file's time is taken a moment before pg_postmaster_start_time(): allow a few seconds.
  if (text === null || Number(lines[3]) !== facts.port || Math.abs(Number(lines[2]) - facts.startEpoch) > 5) {
    throw new DbreplError(
      'STEP',
      `host commands for ${server.ref} would run on ${host.label}, which does not run this server (${pidFile} ${text === null ? 'is missing' : 'names another port or start time'}); run dbrepl on the server's own host`,
    );
  }
}

/** Held while a slave is rebuilt; a leftover one means a run was interrupted and says where the old data is. */
export async function takeRebuildLock(host: Host, server: Server, dataDir: string, info: Record<string, string>): Promise<string> {
  const lock = `${dataDir}.dbrepl-lock`;
  const r = await host.run(['mkdir', '--', lock]);
  if (r.code !== 0) {
    const previous = (await readFile(host, `${lock}/info`))?.trim() ?? '(no info)';
    throw new DbreplError(
      'STEP',
      `${lock} exists: another dbrepl run is rebuilding ${server.ref}, or one was interrupted (${previous}); if none is running, check that the server is as it should be (its previous data may be at the path named there), then remove ${lock}`,
    );
  }
  await writeFile(host, `${lock}/info`, JSON.stringify({ ...info, started: new Date().toISOString() }) + '\n');
  return lock;
}

export async function releaseRebuildLock(host: Host, lock: string): Promise<void> {
  await host.run(['rm', '-rf', '--', lock]);
}

export async function freeBytes(host: Host, dir: string): Promise<number> {
  const out = await runChecked(host, ['df', '-Pk', '--', dir], `df ${dir}`);
  const kb = Number(out.trim().split('\n').pop()!.split(/\s+/)[3]);
  if (!Number.isFinite(kb)) throw new DbreplError('STEP', `cannot read the free space of ${dir} from df`);
  return kb * 1024;
}

export async function checkFreeSpace(host: Host, dataDir: string, needBytes: number, masterRef: string): Promise<void> {
  const dir = path.dirname(dataDir);
  const free = await freeBytes(host, dir);
  // The previous data stays on the same filesystem, so the copy needs room of its own (plus WAL written meanwhile).
  if (free < needBytes * 1.1 + 64 * 1024 * 1024) {
    throw new DbreplError('STEP', `${dir} on ${host.label} has ${humanBytes(free)} free; the copy of ${masterRef} needs about ${humanBytes(needBytes)} while the previous data is kept; free some space first`);
  }
}

export async function findBasebackup(host: Host, major: number): Promise<string> {
  const out = await runChecked(
    host,
    ['/bin/sh', '-c', 'p="/usr/lib/postgresql/$1/bin/pg_basebackup"; if [ -x "$p" ]; then echo "$p"; else command -v pg_basebackup; fi', 'sh', String(major)],
    'looking for pg_basebackup',
  );
  const bin = out.trim();
  if (!bin) throw new DbreplError('STEP', `pg_basebackup (PostgreSQL ${major}) is not installed on ${host.label}`);
  return bin;
}

/** Settings the slave has lower than the master: a standby with them refuses to start or pauses recovery. */
export function standbyShortfalls(master: PgFacts, slave: PgFacts): string[] {
  return Object.entries(master.standbyMinimums)
    .filter(([name, value]) => (slave.standbyMinimums[name] ?? 0) < value)
    .map(([name, value]) => `${name} ${slave.standbyMinimums[name] ?? '?'} < ${value}`);
}

const STANDBY_KEYS = /^\s*(primary_conninfo|primary_slot_name)\s*=/;

/**
 * pg_basebackup copies the master's configuration files when they live in its data
 * directory; the slave keeps its own (port, listen addresses, memory, access rules).
 * postgresql.auto.conf is the slave's old one with the standby settings -R just wrote.
 */
export async function restoreOwnConfig(host: Host, slave: PgFacts, dataDir: string, preserved: string): Promise<void> {
  const inside = (file: string): string | null => (file.startsWith(`${dataDir}/`) ? file.slice(dataDir.length + 1) : null);
  for (const file of [slave.configFile, slave.hbaFile, slave.identFile]) {
    const rel = inside(file);
    if (rel && (await pathExists(host, `${preserved}/${rel}`))) {
      await runChecked(host, ['cp', '-p', '--', `${preserved}/${rel}`, `${dataDir}/${rel}`], `restoring ${rel}`);
    }
  }
  const written = (await readFile(host, `${dataDir}/postgresql.auto.conf`)) ?? '';
  const own = (await readFile(host, `${preserved}/postgresql.auto.conf`)) ?? '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n';
  const standby = written.split('\n').filter((l) => STANDBY_KEYS.test(l));
  const kept = own.split('\n').filter((l) => !STANDBY_KEYS.test(l) && l !== '');
  await writeFile(host, `${dataDir}/postgresql.auto.conf`, [...kept, ...standby].join('\n') + '\n');
}

/**
 * Puts the slave back as it was before the rebuild: stop whatever runs, drop the partial
 * copy, move the previous data back (if it was moved), start. Returns what it did, for the
 * error message.
 */
export async function restorePrevious(host: Host, slave: Server, dataDir: string, preserved: string, moved: boolean): Promise<string> {
  try {
    if (moved) {
      if (!(await pathExists(host, preserved))) throw new DbreplError('STEP', `${preserved} is missing; leaving ${dataDir} as it is`);
      await host.run(serviceArgv(service(slave).stop));
      await runChecked(host, ['rm', '-rf', '--', dataDir], `removing the partial ${dataDir}`);
      await runChecked(host, ['mv', '--no-target-directory', '--', preserved, dataDir], `moving ${preserved} back`);
    }
    await runChecked(host, serviceArgv(service(slave).start), `start command of ${slave.ref}`);
    return moved ? `the slave's previous data was put back at ${dataDir} and the server restarted` : 'the slave was started again on its own data';
  } catch (err) {
    return `putting the slave back failed (${messageOf(err)}); ${moved ? `its previous data is kept at ${preserved}` : 'its data was not moved'}`;
  }
}
