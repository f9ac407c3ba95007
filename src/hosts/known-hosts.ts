import { createHash, createHmac } from 'node:crypto';

/**
 * Host key verification, the way OpenSSH reads known_hosts: plain and hashed (`|1|salt|hash`)
 * host patterns, `[host]:port` for ports other than 22, wildcards and negations, and
 * `@revoked` keys. `@cert-authority` lines are not supported (they are skipped, so such a
 * host is unknown rather than trusted). Pure: the SSH transport asks it before it sends
 * anything.
 */

export interface KnownKey {
  type: string;
  /** The key blob (base64 of the wire format), as in known_hosts. */
  blob: string;
  revoked: boolean;
}

/** OpenSSH's fingerprint of a key blob: `SHA256:` + unpadded base64 of its digest (as `ssh-keygen -lf`). */
export function fingerprint(blob: Buffer | string): string {
  const bytes = typeof blob === 'string' ? Buffer.from(blob, 'base64') : blob;
  return `SHA256:${createHash('sha256').update(bytes).digest('base64').replace(/=+$/, '')}`;
}

/** The key type a blob declares (its first string): ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa... */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** The name known_hosts uses for a host and port. */
export function hostEntryName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  // Only * and ? are special in OpenSSH patterns; brackets are literal ([host]:port).
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

function hashedMatch(pattern: string, name: string): boolean {
  const [, kind, salt, hash] = pattern.split('|');
  if (kind !== '1' || !salt || !hash) return false;
  return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
}

/** Whether a comma-separated host pattern list names `name` (a negated pattern that matches wins). */
function patternsMatch(list: string, name: string): boolean {
  if (list.startsWith('|')) return hashedMatch(list, name);
  let matched = false;
  for (const p of list.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The keys known_hosts text gives for a host and port. */
export function knownKeys(text: string, host: string, port: number): KnownKey[] {
  // OpenSSH matches (and hashes) host names in lower case.
  const name = hostEntryName(host.toLowerCase(), port);
  const out: KnownKey[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: string | null = null;
    if (fields[0]?.startsWith('@')) marker = fields.shift()!;
    const [hosts, type, blob] = fields;
    if (!hosts || !type || !blob) continue;
    // Only @revoked is understood; @cert-authority (not supported) and unknown markers are skipped, never trusted.
    if (marker !== null && marker !== '@revoked') continue;
    if (patternsMatch(hosts, name)) out.push({ type, blob, revoked: marker === '@revoked' });
  }
  return out;
}

/** A pinned `host_key`: a public key line (`ssh-ed25519 AAAA...`) or a fingerprint (`SHA256:...`). */
export function pinnedMatches(pin: string, offered: Buffer): boolean {
  const p = pin.trim();
  if (p.startsWith('SHA256:')) return p === fingerprint(offered);
  const parts = p.split(/\s+/);
  const blob = parts.length >= 2 ? parts[1]! : parts[0]!;
  return blob === offered.toString('base64');
}

export type Verdict = { ok: true } | { ok: false; message: string };

/**
 * Whether the key a host offered is the one the file trusts. Every refusal names the host,
 * the fingerprint seen and the fingerprint expected; there is no way to skip the check.
 */
export function verifyHostKey(where: { host: string; port: number }, offered: Buffer, trust: { knownHosts?: string; hostKey?: string }): Verdict {
  const seen = `${fingerprint(offered)} (${keyType(offered)})`;
  const name = hostEntryName(where.host, where.port);
  if (trust.hostKey) {
    if (pinnedMatches(trust.hostKey, offered)) return { ok: true };
    const expected = trust.hostKey.trim().startsWith('SHA256:') ? trust.hostKey.trim() : `${fingerprint(trust.hostKey.trim().split(/\s+/)[1] ?? trust.hostKey.trim())} (${trust.hostKey.trim().split(/\s+/)[0]})`;
    return { ok: false, message: `host key of ${name} does not match the pinned host_key: the host offered ${seen}, host_key expects ${expected}; if the host's key really changed, update host_key` };
  }
  const keys = knownKeys(trust.knownHosts ?? '', where.host, where.port);
  const b64 = offered.toString('base64');
  if (keys.some((k) => k.revoked && k.blob === b64)) {
    return { ok: false, message: `host key of ${name} is marked @revoked in known_hosts: the host offered ${seen}` };
  }
  if (keys.some((k) => !k.revoked && k.blob === b64)) return { ok: true };
  const expected = keys.filter((k) => !k.revoked).map((k) => `${fingerprint(k.blob)} (${k.type})`);
  if (expected.length === 0) {
    return { ok: false, message: `host key of ${name} is unknown: known_hosts has no key for ${name}; the host offered ${seen} (add it after checking it, e.g. from ssh-keyscan run on a trusted network)` };
  }
  return { ok: false, message: `host key of ${name} changed: the host offered ${seen}, known_hosts expects ${expected.join(' or ')}; if the change is expected, update known_hosts` };
}

/**
 * The host key algorithms to offer for a host: those of the keys the file trusts for it,
 * so that a host whose known key is RSA is not asked for its ed25519 key (and then refused
 * as "changed"). Empty: no preference (nothing known, or a pin by fingerprint).
 */
export function preferredKeyTypes(where: { host: string; port: number }, trust: { knownHosts?: string; hostKey?: string }): string[] {
  const types = trust.hostKey
    ? trust.hostKey.trim().startsWith('SHA256:') ? [] : [trust.hostKey.trim().split(/\s+/)[0]!]
    : knownKeys(trust.knownHosts ?? '', where.host, where.port).filter((k) => !k.revoked).map((k) => k.type);
  const out: string[] = [];
  for (const t of types) {
    // An RSA key signs with SHA-2 in current OpenSSH; ssh-rsa (SHA-1) last.
    for (const alg of t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]) if (!out.includes(alg)) out.push(alg);
  }
  return out;
}
