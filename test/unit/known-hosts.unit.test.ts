/**
 * Host key verification as OpenSSH reads known_hosts, checked against files and
 * fingerprints made by the real ssh-keygen: hashed names (ssh-keygen -H), [host]:port,
 * wildcards and negations, @revoked, pinned keys and fingerprints.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fingerprint, knownKeys, verifyHostKey } from '../../src/hosts/known-hosts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-kh-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function key(name: string, type = 'ed25519'): { line: string; blob: Buffer; fp: string } {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file]);
  const line = fs.readFileSync(`${file}.pub`, 'utf8').trim();
  const fp = execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`]).toString().split(/\s+/)[1]!;
  return { line, blob: Buffer.from(line.split(/\s+/)[1]!, 'base64'), fp };
}

const a = key('a');
const b = key('b');
const c = key('c', 'rsa');

test('the fingerprint is the one ssh-keygen prints', () => {
  expect(fingerprint(a.blob)).toBe(a.fp);
  expect(fingerprint(c.blob)).toBe(c.fp);
});

test('plain, [host]:port, wildcard and negated names', () => {
  const [ta, ba] = a.line.split(' ');
  const text = [`db1.example,10.0.0.5 ${ta} ${ba}`, `[db2.example]:2222 ${ta} ${ba}`, `*.prod.example,!bad.prod.example ${ta} ${ba}`, '# comment', ''].join('\n');
  expect(knownKeys(text, 'db1.example', 22)).toHaveLength(1);
  expect(knownKeys(text, '10.0.0.5', 22)).toHaveLength(1);
  expect(knownKeys(text, 'db1.example', 2222)).toHaveLength(0);
  expect(knownKeys(text, 'db2.example', 2222)).toHaveLength(1);
  expect(knownKeys(text, 'db2.example', 22)).toHaveLength(0);
  expect(knownKeys(text, 'x.prod.example', 22)).toHaveLength(1);
  expect(knownKeys(text, 'bad.prod.example', 22)).toHaveLength(0);
});

test('hashed names as ssh-keygen -H writes them', () => {
  const file = path.join(dir, 'known_hosts');
  fs.writeFileSync(file, `db1.example ${a.line.split(' ').slice(0, 2).join(' ')}\n[db2.example]:2222 ${b.line.split(' ').slice(0, 2).join(' ')}\n`);
  execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
  const text = fs.readFileSync(file, 'utf8');
  expect(text).not.toContain('db1.example');
  expect(verifyHostKey({ host: 'db1.example', port: 22 }, a.blob, { knownHosts: text })).toEqual({ ok: true });
  expect(verifyHostKey({ host: 'db2.example', port: 2222 }, b.blob, { knownHosts: text })).toEqual({ ok: true });
  expect(verifyHostKey({ host: 'db2.example', port: 22 }, b.blob, { knownHosts: text }).ok).toBe(false);
});

test('a changed key names the host, the key seen and the key expected; an unknown host says so', () => {
  const text = `db1.example ${a.line}\n`;
  expect(verifyHostKey({ host: 'db1.example', port: 22 }, b.blob, { knownHosts: text })).toEqual({
    ok: false,
    message: `host key of db1.example changed: the host offered ${b.fp} (ssh-ed25519), known_hosts expects ${a.fp} (ssh-ed25519); if the change is expected, update known_hosts`,
  });
  expect(verifyHostKey({ host: 'db9.example', port: 22 }, b.blob, { knownHosts: text })).toMatchObject({ ok: false, message: expect.stringContaining(`host key of db9.example is unknown: known_hosts has no key for db9.example; the host offered ${b.fp}`) });
  expect(verifyHostKey({ host: 'db1.example', port: 22 }, b.blob, {})).toMatchObject({ ok: false });
});

test('@revoked refuses; @cert-authority lines are not trusted', () => {
  expect(verifyHostKey({ host: 'db1.example', port: 22 }, a.blob, { knownHosts: `@revoked db1.example ${a.line}\ndb1.example ${a.line}\n` })).toMatchObject({ ok: false, message: expect.stringContaining('@revoked') });
  expect(verifyHostKey({ host: 'db1.example', port: 22 }, a.blob, { knownHosts: `@cert-authority db1.example ${a.line}\n` })).toMatchObject({ ok: false, message: expect.stringContaining('is unknown') });
});

test('a pinned host_key: the public key line or its fingerprint', () => {
  expect(verifyHostKey({ host: 'h', port: 22 }, a.blob, { hostKey: a.line })).toEqual({ ok: true });
  expect(verifyHostKey({ host: 'h', port: 22 }, a.blob, { hostKey: a.fp })).toEqual({ ok: true });
  expect(verifyHostKey({ host: 'h', port: 22 }, b.blob, { hostKey: a.fp })).toEqual({ ok: false, message: `host key of h does not match the pinned host_key: the host offered ${b.fp} (ssh-ed25519), host_key expects ${a.fp}; if the host's key really changed, update host_key` });
  expect(verifyHostKey({ host: 'h', port: 22 }, b.blob, { hostKey: a.line }).ok).toBe(false);
  // A pin wins over known_hosts: it is the stricter statement.
  expect(verifyHostKey({ host: 'h', port: 22 }, b.blob, { hostKey: a.fp, knownHosts: `h ${b.line}\n` }).ok).toBe(false);
});

test('names match in lower case, hashed ones too; an unknown marker is never trusted', () => {
  const file = path.join(dir, 'known_hosts_case');
  fs.writeFileSync(file, `db1.example ${a.line.split(' ').slice(0, 2).join(' ')}\n`);
  execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
  expect(verifyHostKey({ host: 'DB1.Example', port: 22 }, a.blob, { knownHosts: fs.readFileSync(file, 'utf8') })).toEqual({ ok: true });
  expect(verifyHostKey({ host: 'DB1.example', port: 22 }, a.blob, { knownHosts: `db1.example ${a.line}\n` })).toEqual({ ok: true });
  // A typo in @revoked must not turn a revocation into trust.
  expect(verifyHostKey({ host: 'db1.example', port: 22 }, a.blob, { knownHosts: `@revoke db1.example ${a.line}\n` }).ok).toBe(false);
});

test('the host key types offered first are those the file trusts for that host', () => {
  const { preferredKeyTypes } = require('../../src/hosts/known-hosts') as typeof import('../../src/hosts/known-hosts');
  expect(preferredKeyTypes({ host: 'h', port: 22 }, { knownHosts: `h ${c.line}\nother ${a.line}\n` })).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  expect(preferredKeyTypes({ host: 'h', port: 22 }, { hostKey: a.line })).toEqual(['ssh-ed25519']);
  expect(preferredKeyTypes({ host: 'h', port: 22 }, { hostKey: a.fp })).toEqual([]);
  expect(preferredKeyTypes({ host: 'nobody', port: 22 }, { knownHosts: `h ${a.line}\n` })).toEqual([]);
});
