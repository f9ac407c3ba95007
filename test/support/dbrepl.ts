import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli } from '../../src/cli';
import { expectNoSecrets, SECRETS, tempDir } from './common';
import { sh } from './sh';

export { expectNoSecrets, SECRETS, stateDirOf, tempDir, writeYaml } from './common';

const ROOT = path.resolve(__dirname, '../..');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

/** Runs dbrepl in-process, as `node dist/cli.js` would, and checks the output for secrets. */
export async function dbrepl(args: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await cli({ argv: args, env, cwd, stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  expectNoSecrets(stdout, `stdout of dbrepl ${args.join(' ')}`);
  expectNoSecrets(stderr, `stderr of dbrepl ${args.join(' ')}`);
  return {
    code,
    stdout,
    stderr,
    json: () => {
      try {
        return JSON.parse(stdout);
      } catch {
        throw new Error(`stdout of dbrepl ${args.join(' ')} is not JSON (exit ${code}):\n${stdout}\nstderr:\n${stderr}`);
      }
    },
  };
}

/** GITHUB_OUTPUT holds `name<<delimiter\nvalue\ndelimiter` blocks. */
function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^([^\n<]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) out[m[1]!] = m[3]!;
  return out;
}

export interface ActionRun {
  code: number;
  /** stdout and stderr: the job log. */
  log: string;
  outputs: Record<string, string>;
  summary: string;
}

/**
 * Runs the bundled action (dist/index.js) as the runner does: inputs as INPUT_*, outputs and the
 * job summary through files. Log, outputs and summary are checked for secrets; `::add-mask::` lines
 * are how the runner learns what to mask, so they are the one place a secret may appear.
 */
export async function runBundledAction(workspace: string, env: NodeJS.ProcessEnv, inputs: Record<string, string>): Promise<ActionRun> {
  const stamp = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const outFile = path.join(workspace, `output-${stamp}`);
  const summaryFile = path.join(workspace, `summary-${stamp}`);
  fs.writeFileSync(outFile, '');
  fs.writeFileSync(summaryFile, '');
  const full: NodeJS.ProcessEnv = { PATH: process.env.PATH, GITHUB_WORKSPACE: workspace, GITHUB_OUTPUT: outFile, GITHUB_STEP_SUMMARY: summaryFile, ...env };
  for (const [k, v] of Object.entries(inputs)) full[`INPUT_${k.toUpperCase()}`] = v;
  const r = await sh(process.execPath, [path.join(ROOT, 'dist/index.js')], { env: full, cwd: workspace, allowFail: true });
  const log = r.stdout + r.stderr;
  expectNoSecrets(log.split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n'), 'action log');
  const outputs = fs.readFileSync(outFile, 'utf8');
  const summary = fs.readFileSync(summaryFile, 'utf8');
  expectNoSecrets(outputs, 'action outputs');
  expectNoSecrets(summary, 'job summary');
  return { code: r.code, log, outputs: parseOutputs(outputs), summary };
}

/** Servers a test file starts: their passwords join SECRETS, and all are stopped and removed at the end. */
export class ServerPool {
  private readonly all: Array<{ destroy(): Promise<void> }> = [];

  async add<T extends { password: string; destroy(): Promise<void> }>(starting: Promise<T>): Promise<T> {
    const server = await starting;
    this.all.push(server);
    SECRETS.add(server.password);
    return server;
  }

  async destroyAll(): Promise<void> {
    await Promise.all(this.all.map((s) => s.destroy()));
  }
}

/** A test file's scratch space: a temp dir for its replication.yml files and a pool of servers, both removed after the file. */
export function scratch(prefix: string, secrets: string[] = []): { pool: ServerPool; dir: () => string } {
  const pool = new ServerPool();
  let dir = '';
  beforeAll(() => {
    for (const s of secrets) SECRETS.add(s);
    dir = tempDir(prefix);
  });
  afterAll(async () => {
    await pool.destroyAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return { pool, dir: () => dir };
}
