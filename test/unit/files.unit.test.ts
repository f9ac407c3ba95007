/**
 * writeFile on the real local shell: what a server's file write must never do — follow a
 * link, write as root into a directory the database user controls, leave half a file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFile } from '../../src/hosts/files';
import { LocalHost, minimalEnv } from '../../src/hosts/local';

const host = new LocalHost(minimalEnv(process.env));
const POSTGRES = Number(require('node:child_process').execFileSync('id', ['-u', 'postgres']).toString());
const POSTGRES_GID = Number(require('node:child_process').execFileSync('id', ['-g', 'postgres']).toString());
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-files-'));
  fs.chmodSync(dir, 0o755);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a file that is a link is refused, naming the link and the key that allows it', async () => {
  const target = path.join(dir, 'real.conf');
  fs.writeFileSync(target, 'real\n');
  const link = path.join(dir, 'pg_hba.conf');
  fs.symlinkSync(target, link);
  await expect(writeFile(host, link, 'new\n')).rejects.toThrow(`${link} on the runner (local) is a symbolic link (to ${target}); dbrepl does not write through links unless the server sets follow_symlinks: true`);
  expect(fs.readFileSync(target, 'utf8')).toBe('real\n');
  await writeFile(host, link, 'new\n', { followSymlinks: true });
  expect(fs.readFileSync(target, 'utf8')).toBe('new\n');
  expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
});

test("in a directory the database user owns, the write is that user's: root's files are out of its reach", async () => {
  const own = path.join(dir, 'data');
  fs.mkdirSync(own, { mode: 0o700 });
  fs.chownSync(own, POSTGRES, POSTGRES_GID);
  const rootOnly = path.join(dir, 'root-only');
  fs.writeFileSync(rootOnly, 'secret\n', { mode: 0o600 });
  // Links planted by the database user at every name the write could use are not followed:
  // the write runs as postgres, which cannot write root's file.
  for (const name of ['pg_hba.conf.dbrepl-tmp', '.pg_hba.conf.dbrepl-tmp']) fs.symlinkSync(rootOnly, path.join(own, name));
  await writeFile(host, path.join(own, 'pg_hba.conf'), 'host all all 10.0.0.0/8 scram-sha-256\n');
  const st = fs.statSync(path.join(own, 'pg_hba.conf'));
  expect([st.uid, st.gid, st.mode & 0o777]).toEqual([POSTGRES, POSTGRES_GID, 0o600]);
  expect(fs.readFileSync(rootOnly, 'utf8')).toBe('secret\n');
  expect(fs.readdirSync(own).sort()).toEqual(['.pg_hba.conf.dbrepl-tmp', 'pg_hba.conf', 'pg_hba.conf.dbrepl-tmp']);
});

test('a new file for a server in a root-owned directory gets the owner and mode the server needs', async () => {
  const file = path.join(dir, '90-dbrepl.cnf');
  await writeFile(host, file, '[mysqld]\nread_only = 1\n', { owner: { uid: POSTGRES, gid: POSTGRES_GID }, mode: '644' });
  const st = fs.statSync(file);
  expect([st.uid, st.mode & 0o777]).toEqual([POSTGRES, 0o644]);
  // An existing file keeps its owner and mode, unless told to give it the server's.
  fs.chownSync(file, 0, 0);
  fs.chmodSync(file, 0o600);
  await writeFile(host, file, 'x\n');
  expect([fs.statSync(file).uid, fs.statSync(file).mode & 0o777]).toEqual([0, 0o600]);
  await writeFile(host, file, 'y\n', { owner: { uid: POSTGRES, gid: POSTGRES_GID }, mode: '644', reown: true });
  expect([fs.statSync(file).uid, fs.statSync(file).mode & 0o777]).toEqual([POSTGRES, 0o644]);
});

test('a directory other users may write to is refused', async () => {
  const open = path.join(dir, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  await expect(writeFile(host, path.join(open, 'f'), 'x')).rejects.toThrow(/is writable by other users \(mode 777\); dbrepl does not write files there/);
});
