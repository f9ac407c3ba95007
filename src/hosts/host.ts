import { DbreplError } from '../errors';
import type { Server } from '../topology';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Extra environment variables; secrets reach commands this way (or by stdin), never by argv. */
  env?: Record<string, string>;
  input?: string;
}

/** Where host commands run: the runner itself, or (later) a server's host over SSH. */
export interface Host {
  readonly label: string;
  /** Runs argv without a shell; a non-zero exit is returned, not thrown. */
  run(argv: string[], options?: RunOptions): Promise<CommandResult>;
  close(): Promise<void>;
}

/** Gives the host of a server; the apply layer closes them all at the end. */
export interface HostProvider {
  forServer(server: Server): Promise<Host>;
  closeAll(): Promise<void>;
}

/** Runs and throws on a non-zero exit, with the last lines of stderr (the caller's messages are redacted at the edge). */
export async function runChecked(host: Host, argv: string[], what: string, options?: RunOptions): Promise<string> {
  const r = await host.run(argv, options);
  if (r.code !== 0) {
    throw new DbreplError('STEP', `${what} failed on ${host.label} (exit ${r.code}): ${tail(r.stderr || r.stdout)}`);
  }
  return r.stdout;
}

export async function readFile(host: Host, file: string): Promise<string | null> {
  const r = await host.run(['cat', '--', file]);
  return r.code === 0 ? r.stdout : null;
}

/**
 * Writes through a temporary file and a rename, so a reader never sees half a file; the
 * rename happens only when the whole content reached the disk (same byte count).
 */
export async function writeFile(host: Host, file: string, content: string): Promise<void> {
  const script = [
    'set -e',
    'tmp="$1.dbrepl-tmp"',
    'trap \'rm -f "$tmp"\' EXIT',
    '(umask 077; cat > "$tmp")',
    '[ "$(wc -c < "$tmp")" -eq "$2" ] || { echo "short write: $(wc -c < "$tmp") of $2 bytes" >&2; exit 1; }',
    'if [ -e "$1" ]; then chown --reference="$1" "$tmp"; chmod --reference="$1" "$tmp"; fi',
    'sync "$tmp" 2>/dev/null || true',
    'mv -f "$tmp" "$1"',
    'trap - EXIT',
  ].join('\n');
  await runChecked(host, ['/bin/sh', '-c', script, 'sh', file, String(Buffer.byteLength(content))], `writing ${file}`, { input: content });
}

export async function pathExists(host: Host, file: string): Promise<boolean> {
  return (await host.run(['test', '-e', file])).code === 0;
}

/** Owner uid, gid and octal mode of a path. */
export async function statOwner(host: Host, file: string): Promise<{ uid: string; gid: string; mode: string }> {
  const out = (await runChecked(host, ['stat', '-c', '%u %g %a', '--', file], `stat ${file}`)).trim();
  const [uid, gid, mode] = out.split(/\s+/);
  if (!uid || !gid || !mode) throw new DbreplError('STEP', `unexpected stat output for ${file}`);
  return { uid, gid, mode };
}

export function tail(text: string, lines = 5): string {
  // Programs echo statements they failed on; password hashes in them are not for reports.
  const t = text
    .trim()
    .split('\n')
    .slice(-lines)
    .join(' | ')
    .replace(/\*[0-9A-Fa-f]{40}/g, '***')
    .replace(/(AS|PASSWORD|USING) '[^']*'/gi, "$1 '***'");
  return t.length > 600 ? t.slice(-600) : t || '(no output)';
}
