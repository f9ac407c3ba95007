import { redactProgramOutput } from '../engines/capabilities';
import { CancelledError, DbreplError, TimeoutError } from '../errors';
import type { Host, RunAs, RunOptions } from './host';
import { COMMAND_TIMEOUT_MS } from './limits';
import { commandSummary } from './quote';

/**
 * Runs and throws on a non-zero exit or a time-out, naming what ran (`shown`, when the argv
 * itself would say less, as for a script); stderr's last lines, redacted.
 */
export async function runChecked(host: Host, argv: string[], what: string, options?: RunOptions, shown: string[] = argv): Promise<string> {
  const r = await host.run(argv, options);
  if (r.cancelled) throw new CancelledError(`${what} on ${host.label} was stopped: the run was cancelled`);
  if (r.timedOut) {
    const ms = options?.timeoutMs ?? COMMAND_TIMEOUT_MS;
    const seconds = ms >= 10_000 ? Math.round(ms / 1000) : Math.round(ms / 100) / 10;
    throw new TimeoutError(`${what} on ${host.label} did not finish within ${seconds} s and was stopped (it ran: ${commandSummary(shown)})${r.stderr.trim() ? `; last output: ${tail(r.stderr)}` : ''}`);
  }
  if (r.code !== 0) {
    throw new DbreplError('STEP', `${what} failed on ${host.label} (exit ${r.code}): ${tail(r.stderr || r.stdout)}`);
  }
  return r.stdout;
}

const SECRET_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * Reads the secrets from stdin into shell variables that are not exported: a program gets
 * one only when the script hands it on (`PGPASSWORD="$pw" exec ...`), and the rest of
 * stdin is the script's own input.
 */
const PRELUDE = `while IFS= read -r -d '' __dbrepl_name && [ -n "$__dbrepl_name" ]; do IFS= read -r -d '' "$__dbrepl_name" || exit 97; done; unset __dbrepl_name`;

export interface ScriptOptions extends Omit<RunOptions, 'input'> {
  /** Lower-case shell variable names -> values; delivered on stdin, never in argv or the environment. */
  secrets?: Record<string, string>;
  input?: string | Buffer;
}

/**
 * Runs a bash script (`set -euo pipefail`) with positional arguments. Secrets reach it
 * through stdin, the one channel that survives sshd (which drops unknown environment
 * variables) and sudo (which resets it), and that children do not inherit.
 */
export async function runScript(host: Host, script: string, args: string[], what: string, options: ScriptOptions = {}): Promise<string> {
  const { secrets, input, ...rest } = options;
  const parts: Buffer[] = [];
  const named = Object.entries(secrets ?? {});
  for (const [name, value] of named) {
    if (!SECRET_NAME.test(name)) throw new Error(`secret variable name ${name} must be a lower-case shell name`);
    if (value.includes('\0')) throw new DbreplError('STEP', `a secret for ${what} contains a NUL byte`);
    parts.push(Buffer.from(`${name}\0${value}\0`));
  }
  if (named.length > 0) parts.push(Buffer.from('\0'));
  if (input !== undefined) parts.push(Buffer.isBuffer(input) ? input : Buffer.from(input));
  const prelude = named.length > 0 ? `${PRELUDE}\n` : '';
  // --norc: bash reads ~/.bashrc when its stdin is a socket (as node's pipes are), taking it for rshd.
  return runChecked(
    host,
    ['bash', '--norc', '--noprofile', '-c', `${prelude}set -euo pipefail\n${script}`, 'dbrepl', ...args],
    what,
    { ...rest, input: parts.length > 0 ? Buffer.concat(parts) : undefined },
    // In messages: the programs and arguments, not the script's plumbing.
    ['bash', '-c', '<script>', ...args],
  );
}

/** A file's text, or null when it does not exist or cannot be read (`as`: read as that user). */
export async function readFile(host: Host, file: string, as?: RunAs): Promise<string | null> {
  const r = await host.run(['cat', '--', file], { as });
  return r.code === 0 ? r.stdout : null;
}

/** Whether anything is at a path (a dangling link counts), in one command. */
export async function pathExists(host: Host, file: string): Promise<boolean> {
  return (await host.run(['sh', '-c', '[ -e "$1" ] || [ -L "$1" ]', 'sh', file])).code === 0;
}

/** Owner uid, gid and octal mode of a path (of a link itself, not its target). */
export async function statOwner(host: Host, file: string): Promise<{ uid: number; gid: number; mode: string }> {
  const out = (await runChecked(host, ['stat', '-c', '%u %g %a', '--', file], `stat ${file}`)).trim();
  const [uid, gid, mode] = out.split(/\s+/);
  if (!uid || !gid || !mode) throw new DbreplError('STEP', `unexpected stat output for ${file}`);
  return { uid: Number(uid), gid: Number(gid), mode };
}

/**
 * Progress meters (dd, pg_basebackup) tell how far a copy got, not why it failed; nor does
 * the shell's own note of a command stopped by a signal (the time limit says that).
 */
const METER = /^(\d+ bytes \(.*copied|\d+\+\d+ records (in|out)$|\d+\/\d+ kB \(\d+%\)|Terminated$|Killed$)/;

/** The last lines of a program's output for a message: redacted of what programs echo back, without progress meters. */
export function tail(text: string, lines = 5): string {
  const kept = text
    .trim()
    .split(/[\r\n]+/)
    .filter((l) => !METER.test(l.trim()));
  const t = redactProgramOutput(kept.slice(-lines).join(' | '));
  return t.length > 600 ? t.slice(-600) : t || '(no output)';
}
