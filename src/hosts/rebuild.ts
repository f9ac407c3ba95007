import * as path from 'node:path';
import { DbreplError } from '../errors';
import type { Server } from '../model';
import { humanBytes } from '../util/bytes';
import { readFile, runChecked } from './commands';
import { writeFile } from './files';
import type { Host } from './host';

/** Host-side guards around rebuilding a slave, shared by the engines. */

export function lockPath(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, '')}.dbrepl-lock`;
}

function lockHeld(lock: string, server: Server, previous: string): DbreplError {
  return new DbreplError(
    'STEP',
    `${lock} exists: another dbrepl run is rebuilding ${server.ref}, or one was interrupted (${previous}); if none is running, check that the server is as it should be (its previous data may be at the path named there), then remove ${lock}`,
  );
}

/** The check alone (plan time): a lock left by another run. */
export async function checkNoRebuildLock(host: Host, server: Server, dataDir: string): Promise<void> {
  const lock = lockPath(dataDir);
  if ((await host.run(['test', '-e', lock])).code === 0 || (await host.run(['test', '-L', lock])).code === 0) {
    throw lockHeld(lock, server, (await readFile(host, `${lock}/info`))?.trim() ?? '(no info)');
  }
}

/** Held while a slave is rebuilt; a leftover one means a run was interrupted and says where the old data is. */
export async function takeRebuildLock(host: Host, server: Server, dataDir: string, info: Record<string, string>): Promise<string> {
  const lock = lockPath(dataDir);
  const r = await host.run(['mkdir', '-m', '700', '--', lock]);
  if (r.code !== 0) throw lockHeld(lock, server, (await readFile(host, `${lock}/info`))?.trim() ?? '(no info)');
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
