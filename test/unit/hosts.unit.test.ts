/**
 * Host helpers through the real local shell (no servers): atomic writes that never leave
 * a short file, and the check that a host really runs the server it is about to touch.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CommandResult, Host, HostFacts, RunOptions } from '../../src/hosts/host';
import { writeFile } from '../../src/hosts/files';
import { LocalHost, minimalEnv } from '../../src/hosts/local';
import { verifyHost } from '../../src/engines/postgresql/slave';
import type { PgFacts } from '../../src/engines/postgresql/inspect';
import type { Server } from '../../src/topology';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-hosts-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The local shell, but stdin loses its second half on the way (a cut pipe, a full disk). */
class CutPipeHost implements Host {
  readonly label = 'cut pipe';
  private readonly local = new LocalHost(minimalEnv(process.env));
  run(argv: string[], options: RunOptions = {}): Promise<CommandResult> {
    const input = options.input === undefined ? undefined : options.input.slice(0, Math.floor(options.input.length / 2));
    return this.local.run(argv, { ...options, input });
  }
  facts(): Promise<HostFacts> {
    return this.local.facts();
  }
  async close(): Promise<void> {}
}

test('writeFile replaces the content and keeps the mode of the file it replaces', async () => {
  const file = path.join(dir, 'pg_hba.conf');
  fs.writeFileSync(file, 'old\n', { mode: 0o640 });
  fs.chmodSync(file, 0o640);
  await writeFile(new LocalHost(minimalEnv(process.env)), file, 'new line 1\nnew line 2\n');
  expect(fs.readFileSync(file, 'utf8')).toBe('new line 1\nnew line 2\n');
  expect(fs.statSync(file).mode & 0o777).toBe(0o640);
  expect(fs.readdirSync(dir)).toEqual(['pg_hba.conf']);
});

test('a short write fails and leaves the original file as it was', async () => {
  const file = path.join(dir, 'pg_hba.conf');
  fs.writeFileSync(file, 'host all all 10.0.0.0/8 scram-sha-256\n');
  await expect(writeFile(new CutPipeHost(), file, 'x'.repeat(10_000))).rejects.toThrow(/short write: 5000 of 10000 bytes/);
  expect(fs.readFileSync(file, 'utf8')).toBe('host all all 10.0.0.0/8 scram-sha-256\n');
  expect(fs.readdirSync(dir)).toEqual(['pg_hba.conf']);
});

describe('verifyHost', () => {
  const server = { ref: 'shop/pg' } as Server;
  const facts = (dataDirectory: string): PgFacts => ({ dataDirectory, port: 5433, startEpoch: 1764000000 }) as PgFacts;

  test('passes when postmaster.pid names the same port and start time', async () => {
    fs.writeFileSync(path.join(dir, 'postmaster.pid'), `4242\n${dir}\n1764000000\n5433\n/tmp\n*\n`);
    await expect(verifyHost(new LocalHost(minimalEnv(process.env)), server, facts(dir))).resolves.toBeUndefined();
  });

  test('refuses a server at that path started at another time (a restart of another cluster)', async () => {
    fs.writeFileSync(path.join(dir, 'postmaster.pid'), `4242\n${dir}\n1763990000\n5433\n/tmp\n*\n`);
    await expect(verifyHost(new LocalHost(minimalEnv(process.env)), server, facts(dir))).rejects.toThrow(/names another port or start time/);
  });

  test('refuses a host whose server at that path is another one (other port)', async () => {
    fs.writeFileSync(path.join(dir, 'postmaster.pid'), `4242\n${dir}\n1764000000\n5432\n/tmp\n*\n`);
    await expect(verifyHost(new LocalHost(minimalEnv(process.env)), server, facts(dir))).rejects.toThrow(/host commands for shop\/pg would run on the runner \(local\), which does not run this server .*names another port or start time/);
  });

  test('refuses a host that has no such data directory', async () => {
    await expect(verifyHost(new LocalHost(minimalEnv(process.env)), server, facts(path.join(dir, 'nowhere')))).rejects.toThrow(/postmaster\.pid is missing/);
  });
});
