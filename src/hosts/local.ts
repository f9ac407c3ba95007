import * as exec from '@actions/exec';
import type { Host, CommandResult, RunOptions } from './host';

/** Host commands on the runner itself, through @actions/exec. */
export class LocalHost implements Host {
  readonly label = 'the runner (local)';

  async run(argv: string[], options: RunOptions = {}): Promise<CommandResult> {
    const [cmd, ...args] = argv;
    if (!cmd) throw new Error('empty command');
    try {
      const r = await exec.getExecOutput(cmd, args, {
        silent: true,
        ignoreReturnCode: true,
        env: { ...(process.env as Record<string, string>), ...options.env },
        input: options.input === undefined ? undefined : Buffer.from(options.input),
      });
      return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      // @actions/exec throws when the program cannot be started (not found, not executable).
      return { code: 127, stdout: '', stderr: (err as Error).message };
    }
  }

  async close(): Promise<void> {}
}
