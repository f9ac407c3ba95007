import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { expectNoSecrets } from './common';

// The fault suite's script is bundled elsewhere: it names the bundle (npm run faults runs from the repository).
const CLI = process.env.DBREPL_CLI ?? path.resolve(__dirname, '../../dist/cli.js');

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The committed bundle run as its own process, as a runner runs it: so it can be killed
 * (SIGKILL: a lost runner) or cancelled (SIGINT/SIGTERM: a cancelled workflow) at a chosen
 * moment, which the in-process runs of the other tests cannot be.
 */
export class CliProcess {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  private readonly waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  readonly done: Promise<CliExit>;

  constructor(args: string[], env: NodeJS.ProcessEnv, cwd = '/tmp') {
    this.child = spawn(process.execPath, [CLI, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (c: Buffer) => (this.out += c.toString()));
    this.child.stderr!.on('data', (c: Buffer) => {
      this.err += c.toString();
      for (const w of [...this.waiters]) {
        if (w.re.test(this.err)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
    this.done = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        expectNoSecrets(this.out, `stdout of dbrepl ${args.join(' ')}`);
        expectNoSecrets(this.err, `stderr of dbrepl ${args.join(' ')}`);
        resolve({ code, signal, stdout: this.out, stderr: this.err });
      });
    });
  }

  get stderr(): string {
    return this.err;
  }

  /** Resolves when stderr (the log) matches; rejects if the process ends first or the time runs out. */
  waitFor(re: RegExp, timeoutMs = 60_000): Promise<void> {
    if (re.test(this.err)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} in the log of dbrepl:\n${this.err.slice(-3000)}`)), timeoutMs);
      void this.done.then(() => reject(new Error(`dbrepl ended before ${re} appeared:\n${this.err.slice(-3000)}`)));
      this.waiters.push({
        re,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      });
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

/** The log line the protocol writes when a step starts: `<pair>: <step text>`. */
export function stepStarted(pair: string, stepText: string): RegExp {
  return new RegExp(`^${escape(pair)}: ${escape(stepText.slice(0, 60))}`, 'm');
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
