import * as path from 'node:path';
import { DbreplError } from '../errors';
import { humanBytes } from '../util/bytes';
import { runChecked } from './commands';
import type { Host } from './host';

/** Host-side guards around rebuilding a slave, shared by the engines. */

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
