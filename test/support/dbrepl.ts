import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { cli } from '../../src/cli';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

/**
 * Every secret any test hands to the tool. Each run of the CLI (and of the bundled action)
 * checks its whole output against this list, so a leak fails the test that caused it.
 */
export const SECRETS = new Set<string>();

export function expectNoSecrets(text: string, where: string): void {
  for (const s of SECRETS) {
    if (s && text.includes(s)) throw new Error(`a secret leaked into ${where}: ${text.slice(Math.max(0, text.indexOf(s) - 80), text.indexOf(s) + 20).replace(s, '<SECRET>')}`);
  }
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

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeYaml(dir: string, doc: unknown, name = 'replication.yml'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, stringify(doc));
  return file;
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
