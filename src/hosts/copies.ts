import * as path from 'node:path';
import { DbreplError } from '../errors';
import { runChecked } from './commands';
import { ownerOfDirectory } from './files';
import type { Host } from './host';

/**
 * Where an engine keeps a slave's previous data: `<base>.dbrepl-<stamp><suffix>` on the
 * server's host, a directory or a file. The one definition both the steps that make a copy
 * and `dbrepl preserved` (which lists and removes them) use.
 */
export interface CopyPattern {
  base: string;
  suffix: string;
  kind: 'directory' | 'file';
}

/** The stamp of a run: UTC to the millisecond, as `20261126T071509123Z`. */
const STAMP_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/;

export function copyPath(pattern: CopyPattern, stamp: string): string {
  return `${pattern.base}.dbrepl-${stamp}${pattern.suffix}`;
}

/** A copy of a server's previous data that dbrepl made, found on its host. */
export interface FoundCopy {
  path: string;
  kind: CopyPattern['kind'];
  /** Disk usage in bytes (`du`). */
  bytes: number;
  /** The run that made it: the stamp in its name. */
  stamp: string;
  created: Date;
}

const GLOB = /[*?[\]\\]/g;

/** The time a stamp names, or null when the name is not one dbrepl gives. */
export function stampTime(stamp: string): Date | null {
  const m = STAMP_PATTERN.exec(stamp);
  if (!m) return null;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!));
  return Number.isNaN(d.getTime()) ? null : d;
}

/** The stamp of a path that has exactly the name dbrepl gives a copy of this pattern, else null. */
export function stampOfCopy(pattern: CopyPattern, file: string): string | null {
  const prefix = `${pattern.base}.dbrepl-`;
  if (!file.startsWith(prefix) || !file.endsWith(pattern.suffix)) return null;
  const stamp = file.slice(prefix.length, file.length - pattern.suffix.length);
  return stampTime(stamp) && copyPath(pattern, stamp) === file ? stamp : null;
}

/**
 * The copies next to a server's data, oldest first. Only entries with exactly the name
 * dbrepl gives and the right type count: a symbolic link or a directory where a file is
 * expected is not a copy dbrepl made (and is never followed).
 */
export async function listCopies(host: Host, pattern: CopyPattern): Promise<FoundCopy[]> {
  const dir = path.posix.dirname(pattern.base);
  const glob = `${path.posix.basename(pattern.base).replace(GLOB, '\\$&')}.dbrepl-*`;
  // find -P (the default) reports a link as `l`, never what it points to; NUL-separated, so any name is safe.
  const listed = await runChecked(host, ['sh', '-c', '[ -d "$1" ] || exit 0; exec find "$1" -mindepth 1 -maxdepth 1 -name "$2" -printf "%y %p\\0"', 'sh', dir, glob], `listing the copies in ${dir}`);
  const want = pattern.kind === 'directory' ? 'd' : 'f';
  const found: Array<{ path: string; stamp: string }> = [];
  for (const entry of listed.split('\0')) {
    if (entry.length < 3 || entry.slice(0, 2) !== `${want} `) continue;
    const file = entry.slice(2);
    const stamp = stampOfCopy(pattern, file);
    if (stamp) found.push({ path: file, stamp });
  }
  if (found.length === 0) return [];
  const sizes = new Map<string, number>();
  const du = await runChecked(host, ['du', '-s', '-B1', '-0', '--', ...found.map((f) => f.path)], `measuring the copies in ${dir}`);
  for (const line of du.split('\0')) {
    const tab = line.indexOf('\t');
    if (tab > 0) sizes.set(line.slice(tab + 1), Number(line.slice(0, tab)));
  }
  return found
    .map((f) => ({ path: f.path, kind: pattern.kind, bytes: sizes.get(f.path) ?? 0, stamp: f.stamp, created: stampTime(f.stamp)! }))
    .sort((a, b) => a.stamp.localeCompare(b.stamp));
}

/**
 * Removes one copy, as the owner of the directory it is in (a link planted there by that
 * user leads only where the user could go anyway), checking its type again in the same
 * command: a path that became a link, or changed type, since it was listed is left alone.
 */
export async function removeCopy(host: Host, copy: FoundCopy): Promise<void> {
  const as = await ownerOfDirectory(host, copy.path);
  const test = copy.kind === 'directory' ? '-d' : '-f';
  const r = await host.run(['sh', '-c', `[ -L "$1" ] && exit 3; [ ${test} "$1" ] || exit 4; exec rm -rf --one-file-system -- "$1"`, 'sh', copy.path], { as, timeoutMs: 10 * 60_000 });
  if (r.code === 3 || r.code === 4) throw new DbreplError('STEP', `${copy.path} on ${host.label} is no longer the ${copy.kind} dbrepl made (it is ${r.code === 3 ? 'a symbolic link' : 'of another type or gone'}); left alone`);
  if (r.code !== 0 || r.timedOut) throw new DbreplError('STEP', `removing ${copy.path} on ${host.label} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
}
