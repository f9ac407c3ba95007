import * as path from 'node:path';
import { DbreplError } from '../errors';
import type { Server } from '../model';
import { humanBytes } from '../util/bytes';
import { pathExists, runChecked } from './commands';
import { ownerOfDirectory, readServerFile, writeFile } from './files';
import type { Host } from './host';

/** Host-side guards around rebuilding a slave, shared by the engines. */

export function lockPath(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, '')}.dbrepl-lock`;
}

const INFO_FIELDS = ['pair', 'action', 'preserved', 'started', 'host', 'pid', 'failed'] as const;

/**
 * What a lock says about its run, for the message: only the fields dbrepl writes, cut to a
 * readable length (the file sits where the database's user can write).
 */
async function lockInfo(host: Host, lock: string): Promise<string> {
  const text = await readServerFile(host, `${lock}/info`).catch(() => null);
  try {
    const info = JSON.parse(text ?? '') as Record<string, unknown>;
    const said = INFO_FIELDS.filter((k) => typeof info[k] === 'string' && info[k]).map((k) => `${k}: ${String(info[k]).slice(0, 300)}`);
    return said.length > 0 ? said.join(', ') : 'no info';
  } catch {
    return 'no readable info';
  }
}

async function lockHeld(host: Host, lock: string, server: Server): Promise<DbreplError> {
  return new DbreplError(
    'STEP',
    `${lock} exists: another dbrepl run is rebuilding ${server.ref}, or one was interrupted (${await lockInfo(host, lock)}); if none is running, check that the server is as it should be (its previous data may be at the path named there), then remove ${lock}`,
  );
}

/** The check alone (plan time): a lock left by another run. */
export async function checkNoRebuildLock(host: Host, server: Server, dataDir: string): Promise<void> {
  const lock = lockPath(dataDir);
  if (await pathExists(host, lock)) throw await lockHeld(host, lock, server);
}

/** Held while a slave is rebuilt; a leftover one means a run was interrupted and says where the old data is. */
/** Taken by the owner of the directory it is made in (see ownerOfDirectory), as everything there. */
export async function takeRebuildLock(host: Host, server: Server, dataDir: string, info: Record<string, string>): Promise<string> {
  const lock = lockPath(dataDir);
  const as = await ownerOfDirectory(host, lock);
  const text = JSON.stringify({ ...info, host: (await host.facts()).hostname, started: new Date().toISOString() }) + '\n';
  // Made and filled in one command, by the directory's owner: a new directory (mkdir fails on
  // anything already there, a link included) that only that owner can enter.
  const r = await host.run(['sh', '-c', 'mkdir -m 700 -- "$1" || exit 3; cat > "$1/info" || { rm -rf -- "$1"; exit 1; }', 'sh', lock], { as, input: text });
  if (r.code === 3) throw await lockHeld(host, lock, server);
  if (r.code !== 0) throw new DbreplError('STEP', `cannot take the rebuild lock ${lock} on ${host.label}: ${r.stderr.trim()}`);
  return lock;
}

export async function writeLockInfo(host: Host, lock: string, info: Record<string, string>): Promise<void> {
  await writeFile(host, `${lock}/info`, JSON.stringify(info) + '\n');
}

/** Marks a lock as left by a run whose undo did not finish: it stays, and says why. */
export async function keepRebuildLock(host: Host, lock: string, failed: string): Promise<void> {
  const text = await readServerFile(host, `${lock}/info`).catch(() => null);
  let info: Record<string, string> = {};
  try {
    info = JSON.parse(text ?? '{}') as Record<string, string>;
  } catch {
    // written anew below
  }
  await writeLockInfo(host, lock, { ...info, failed: failed.slice(0, 1000) });
}

export async function releaseRebuildLock(host: Host, lock: string): Promise<void> {
  await host.run(['rm', '-rf', '--', lock], { as: await ownerOfDirectory(host, lock).catch(() => undefined) });
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
