import * as path from 'node:path';
import { DbreplError } from '../errors';
import { runChecked, runScript } from './commands';
import type { Host, RunAs } from './host';

export interface WriteOptions {
  /** Owner of a new file (default: the owner of its directory); an existing file keeps its own unless `reown`. */
  owner?: RunAs;
  /** Octal mode of a new file (default 600); an existing file keeps its own unless `reown`. */
  mode?: string;
  /** Give an existing file `owner` and `mode` too (a file the server must be able to read). */
  reown?: boolean;
  /** The server's file may be a symbolic link, written through (replication.yml: follow_symlinks). */
  followSymlinks?: boolean;
}

interface PathInfo {
  kind: 'file' | 'link' | 'none';
  target: string | null;
  uid: number;
  gid: number;
  mode: number;
  dir: { uid: number; gid: number; mode: number };
}

async function pathInfo(host: Host, file: string): Promise<PathInfo> {
  const out = await runScript(
    host,
    `f=$1
if [ -L "$f" ]; then printf 'link 0 0 0 %s\\n' "$(readlink -f -- "$f")"
elif [ -e "$f" ]; then stat -c 'file %u %g %a' -- "$f"
else echo 'none 0 0 0'; fi
stat -c 'dir %u %g %a' -- "$(dirname -- "$f")"`,
    [file],
    `inspecting ${file}`,
  ).catch((err: unknown) => {
    throw new DbreplError('STEP', `${path.dirname(file)} does not exist or cannot be read on ${host.label}`, { cause: err });
  });
  const [first = '', second = ''] = out.trim().split('\n');
  const [kind, uid, gid, mode, ...target] = first.split(' ');
  const [, duid, dgid, dmode] = second.split(' ');
  return {
    kind: kind as PathInfo['kind'],
    target: target.length > 0 ? target.join(' ') : null,
    uid: Number(uid),
    gid: Number(gid),
    mode: parseInt(mode ?? '0', 8),
    dir: { uid: Number(duid), gid: Number(dgid), mode: parseInt(dmode ?? '0', 8) },
  };
}

/**
 * Where a write of `file` would go, refusing what writeFile refuses: a link (unless the
 * server's follow_symlinks says to write its target), a directory other users can write to.
 * Changes nothing, so plans run it too.
 */
export async function writableTarget(host: Host, file: string, followSymlinks?: boolean): Promise<{ target: string; info: PathInfo }> {
  let target = file;
  let info = await pathInfo(host, target);
  if (info.kind === 'link') {
    if (!followSymlinks || !info.target) {
      throw new DbreplError(
        'STEP',
        `${file} on ${host.label} is a symbolic link (to ${info.target ?? 'nothing'}); dbrepl does not write through links unless the server sets follow_symlinks: true`,
      );
    }
    target = info.target;
    info = await pathInfo(host, target);
    if (info.kind === 'link') throw new DbreplError('STEP', `${target} on ${host.label} is still a link after resolving ${file}`);
  }
  if ((info.dir.mode & 0o022) !== 0 && (info.dir.mode & 0o1000) === 0) {
    throw new DbreplError('STEP', `${path.dirname(target)} on ${host.label} is writable by other users (mode ${info.dir.mode.toString(8)}); dbrepl does not write files there`);
  }
  return { target, info };
}

/**
 * Writes a server's file safely, also in a directory the server's own user can write to
 * (a database superuser can plant files there, e.g. through COPY ... TO PROGRAM):
 * - a file that is a symbolic link is refused, unless the server's `follow_symlinks` says
 *   to write the link's target;
 * - the content goes to a temporary file with an unpredictable name, created exclusively
 *   (mktemp: O_EXCL), then renamed over the file, so a reader never sees half a file and
 *   nothing planted is followed;
 * - the write runs as the owner of the directory, never with more privilege than that
 *   directory's owner already has (root only where root owns the directory);
 * - the rename happens only when the whole content reached the disk (same byte count).
 */
export async function writeFile(host: Host, file: string, content: string, options: WriteOptions = {}): Promise<void> {
  const { target, info } = await writableTarget(host, file, options.followSymlinks);
  const writer: RunAs = { uid: info.dir.uid, gid: info.dir.gid };
  const keep = info.kind === 'file' && !options.reown;
  const owner = keep ? { uid: info.uid, gid: info.gid } : (options.owner ?? writer);
  const mode = keep ? info.mode.toString(8) : (options.mode ?? '600');
  const me = (await host.facts()).uid;
  // Only root can give the file to another user; otherwise it stays the writer's.
  const chown = writer.uid === 0 && me === 0 && (owner.uid !== 0 || owner.gid !== 0) ? `${owner.uid}:${owner.gid}` : '';
  const bytes = Buffer.byteLength(content);
  await runScript(
    host,
    `f=$1; n=$2; mode=$3; owner=$4
tmp=$(mktemp -- "$(dirname -- "$f")/.$(basename -- "$f").dbrepl-XXXXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
got=$(wc -c < "$tmp")
[ "$got" -eq "$n" ] || { echo "short write: $got of $n bytes" >&2; exit 1; }
chmod -- "$mode" "$tmp"
if [ -n "$owner" ]; then chown -h -- "$owner" "$tmp"; fi
sync -- "$tmp" 2>/dev/null || true
mv -fT -- "$tmp" "$f"
trap - EXIT`,
    [target, String(bytes), mode, chown],
    `writing ${target}`,
    { input: content, as: me === 0 && writer.uid !== 0 ? writer : undefined },
  );
}

/**
 * The user that owns the directory `file` is in, when that is not root: commands that
 * create, move or remove entries there run as that user, so a link planted by it leads
 * only where it could go anyway. Undefined where root owns the directory (nobody else can
 * plant anything there).
 */
export async function ownerOfDirectory(host: Host, file: string): Promise<RunAs | undefined> {
  const [uid, gid] = (await runChecked(host, ['stat', '-c', '%u %g', '--', path.dirname(file)], `stat ${path.dirname(file)}`)).trim().split(' ').map(Number);
  return uid === 0 ? undefined : { uid: uid!, gid: gid! };
}

/**
 * Reads a server's file as the owner of its directory (what that user can read anyway),
 * never through a link: what root reads here may end up in a message or in another file.
 * Null when it does not exist or cannot be read.
 */
export async function readServerFile(host: Host, file: string): Promise<string | null> {
  // One command: the directory's owner is read there, and the file read as that owner.
  const r = await host.run(
    ['sh', '-c', `[ -L "$1" ] && exit 3; o=$(stat -c %u:%g -- "$(dirname -- "$1")") || exit 1
case "$o" in 0:*) exec cat -- "$1";; *) exec setpriv --reuid="\${o%:*}" --regid="\${o#*:}" --init-groups -- cat -- "$1";; esac`, 'sh', file],
  );
  if (r.code === 3) throw new DbreplError('STEP', `${file} on ${host.label} is a symbolic link; dbrepl does not read server files through links`);
  return r.code === 0 ? r.stdout : null;
}
