import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { currentSignal } from '../util/cancel';
import { orphanWatch } from './host';
import type { CommandResult, Host, HostFacts, RunOptions } from './host';

// The wrapper leads the command's process group here (spawned detached); dash's kill takes -PGID, not `--`.
const WATCH = orphanWatch('kill -TERM -$$; sleep 5; kill -KILL -$$');
import { COMMAND_TIMEOUT_MS } from './limits';

/** What a host command inherits from the runner: enough to find programs and speak a language, nothing else. */
const INHERITED = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'] as const;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Output kept per stream: enough for any error message, bounded for commands that talk a lot. */
const MAX_OUTPUT = 8 * 1024 * 1024;
/** After SIGTERM on a time-out, how long the command's process group has before SIGKILL. */
const KILL_GRACE_MS = 5_000;
export const CANCEL_GRACE_MS = 2_000;

/** Calls `each` per line of a stream's chunks (a line ends at \n or \r, as progress meters redraw). */
export function lineSplitter(each: (line: string) => void): (chunk: Buffer) => void {
  let rest = '';
  return (chunk) => {
    const parts = (rest + chunk.toString('utf8')).split(/[\r\n]/);
    rest = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) each(p.trim());
  };
}

export function minimalEnv(from: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED) if (from[k] !== undefined) env[k] = from[k]!;
  // Service commands run sbin programs (runuser, systemctl): make sure they are found.
  env.PATH = env.PATH ? `${env.PATH}:/usr/sbin:/sbin` : DEFAULT_PATH;
  return env;
}

/**
 * Host commands on the runner itself. node's child_process rather than @actions/exec:
 * a time-out must stop the command and every child it started (a pipeline, a shell's
 * programs), which needs a process group of its own; @actions/exec cannot signal one.
 */
export class LocalHost implements Host {
  readonly label = 'the runner (local)';
  private cachedFacts: HostFacts | undefined;

  constructor(private readonly baseEnv: Record<string, string>) {}

  run(argv: string[], options: RunOptions = {}): Promise<CommandResult> {
    let full = argv;
    const own = process.getuid?.() ?? 0;
    if (options.as && options.as.uid !== own) {
      if (own !== 0) {
        return Promise.resolve({ code: 126, stdout: '', stderr: `cannot run as uid ${options.as.uid}: the tool runs as uid ${own}, not root`, timedOut: false });
      }
      // The user's own HOME, PATH and names (programs read ~/ files: libpq's ~/.postgresql), then ours on top.
      const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
      full = ['setpriv', `--reuid=${options.as.uid}`, `--regid=${options.as.gid}`, '--init-groups', '--reset-env', '--', 'env', ...env, ...argv];
    }
    // In its own process group (detached below): the watchdog stops the whole group if dbrepl dies.
    const [cmd, ...args] = ['sh', '-c', WATCH, 'sh', ...full];
    if (!cmd) return Promise.resolve({ code: 127, stdout: '', stderr: 'empty command', timedOut: false });
    const timeoutMs = options.timeoutMs ?? COMMAND_TIMEOUT_MS;
    const signal = options.signal ?? currentSignal();
    if (signal?.aborted) return Promise.resolve({ code: 130, stdout: '', stderr: 'not started: the run was cancelled', timedOut: false, cancelled: true });

    return new Promise((resolve) => {
      const child = spawn(cmd, args, {
        env: { ...this.baseEnv, ...options.env },
        cwd: '/',
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      let errBytes = 0;
      let timedOut = false;
      let cancelled = false;
      let settled = false;
      const keep = (chunks: Buffer[], n: number, chunk: Buffer): number => {
        if (n < MAX_OUTPUT) chunks.push(chunk);
        return n + chunk.length;
      };
      child.stdout.on('data', (c: Buffer) => (outBytes = keep(out, outBytes, c)));
      const lines = options.progress ? lineSplitter(options.progress) : null;
      child.stderr.on('data', (c: Buffer) => {
        errBytes = keep(err, errBytes, c);
        lines?.(c);
      });
      const killGroup = (signal: NodeJS.Signals): void => {
        try {
          if (child.pid) process.kill(-child.pid, signal);
        } catch {
          // already gone
        }
      };
      const stop = (graceMs: number): void => {
        killGroup('SIGTERM');
        setTimeout(() => killGroup('SIGKILL'), graceMs).unref();
      };
      const timer = setTimeout(() => {
        timedOut = true;
        stop(KILL_GRACE_MS);
      }, timeoutMs);
      // A cancelled run has seconds before the runner kills it: a short grace.
      const onAbort = (): void => {
        cancelled = true;
        stop(CANCEL_GRACE_MS);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (code: number): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut, ...(cancelled ? { cancelled } : {}) });
      };
      // The program could not be started (not found, not executable).
      child.on('error', (e) => {
        err.push(Buffer.from(e.message));
        finish(127);
      });
      child.on('exit', (code, signal) => {
        // A daemon the command started may keep our pipes open: give them a moment, then stop reading.
        const done = (): void => finish(code ?? (signal ? 128 : 1));
        if (child.stdout.readableEnded && child.stderr.readableEnded) return done();
        const t = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          done();
        }, 200);
        child.on('close', () => {
          clearTimeout(t);
          done();
        });
      });
      child.stdin.on('error', () => undefined);
      if (options.input !== undefined) child.stdin.end(options.input);
      else child.stdin.end();
    });
  }

  async facts(): Promise<HostFacts> {
    this.cachedFacts ??= {
      uid: process.getuid?.() ?? 0,
      hostname: os.hostname(),
      bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      netns: fs.readlinkSync('/proc/self/ns/net'),
    };
    return this.cachedFacts;
  }

  async close(): Promise<void> {}
}
