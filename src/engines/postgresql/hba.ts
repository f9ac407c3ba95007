import { BlockList, isIP } from 'node:net';

/** A row of pg_hba_file_rules. */
export interface HbaRule {
  line_number: number;
  type: string;
  database: string[] | null;
  user_name: string[] | null;
  address: string | null;
  netmask: string | null;
  auth_method: string | null;
  error: string | null;
}

const PASSWORD_METHODS = new Set(['trust', 'scram-sha-256', 'md5', 'password']);

export type HbaVerdict = { admitted: true; line: number } | { admitted: false; line: number | null; why: string };

/**
 * Whether the master's pg_hba rules let `user` open a replication connection from
 * `address` with a password, evaluated as the server does: the first rule whose type,
 * database, user and address match decides. Rules this code cannot evaluate (group
 * membership, samenet, hostnames against an IP) are treated as not matching, so the tool
 * adds its own explicit rule rather than trust a guess.
 */
export function admitsReplication(rules: HbaRule[], user: string, address: string, ssl: boolean): HbaVerdict {
  for (const r of [...rules].sort((a, b) => a.line_number - b.line_number)) {
    if (r.error) continue;
    const tcp = r.type === 'host' || r.type === 'hostnogssenc' || (r.type === 'hostssl' && ssl) || (r.type === 'hostnossl' && !ssl);
    if (!tcp) continue;
    if (!r.database?.includes('replication')) continue;
    const userMatch = matchUser(r.user_name ?? [], user);
    const addrMatch = addressMatches(r, address);
    if (userMatch === false || addrMatch === false) continue;
    // A rule that might match but cannot be evaluated here decides nothing we can trust.
    if (userMatch === null || addrMatch === null) {
      return { admitted: false, line: r.line_number, why: `line ${r.line_number} may match and cannot be evaluated here` };
    }
    const method = r.auth_method ?? '';
    if (PASSWORD_METHODS.has(method)) return { admitted: true, line: r.line_number };
    return { admitted: false, line: r.line_number, why: `line ${r.line_number} matches first with method "${method}"` };
  }
  return { admitted: false, line: null, why: 'no rule matches' };
}

/** true, false, or null when it cannot be known here (group membership, @file). */
function matchUser(users: string[], user: string): boolean | null {
  if (users.some((u) => u === 'all' || u === user)) return true;
  if (users.some((u) => u.startsWith('+') || u.startsWith('@') || u.startsWith('/'))) return null;
  return false;
}

/** true, false, or null when it cannot be known here (samehost, samenet, host names). */
function addressMatches(rule: HbaRule, address: string): boolean | null {
  const a = rule.address;
  if (a === 'all') return true;
  if (!a) return null;
  if (a === 'samehost' || a === 'samenet') return null;
  const family = isIP(address);
  const ruleFamily = isIP(a);
  if (ruleFamily === 0) return a.toLowerCase() === address.toLowerCase() ? true : null;
  if (family === 0) return null;
  if (ruleFamily !== family) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const prefix = rule.netmask ? maskToPrefix(rule.netmask) : family === 4 ? 32 : 128;
  if (prefix === null) return null;
  const list = new BlockList();
  list.addSubnet(a, prefix, type);
  return list.check(address, type);
}

function maskToPrefix(mask: string): number | null {
  let bits: string;
  if (isIP(mask) === 4) {
    bits = mask.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
  } else if (isIP(mask) === 6) {
    const [head = '', rest = ''] = mask.split('::');
    const h = head ? head.split(':') : [];
    const t = rest ? rest.split(':') : [];
    const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    bits = groups.map((g) => parseInt(g || '0', 16).toString(2).padStart(16, '0')).join('');
  } else {
    return null;
  }
  if (!/^1*0*$/.test(bits)) return null;
  const zero = bits.indexOf('0');
  return zero === -1 ? bits.length : zero;
}

/** The line the tool adds (first in the file, so it wins over any later reject); `hostssl` when the pair uses TLS. */
export function hbaLine(user: string, address: string, method: string, ssl = false): string {
  const family = isIP(address);
  const addr = family === 4 ? `${address}/32` : family === 6 ? `${address}/128` : address;
  return `${ssl ? 'hostssl' : 'host'} replication "${user.replace(/"/g, '""')}" ${addr} ${method}`;
}

/** A rule as the file has it, for messages. */
export function ruleText(r: HbaRule): string {
  const list = (v: string[] | null): string => (v ?? []).join(',');
  return [r.type, list(r.database), list(r.user_name), r.address, r.netmask, r.auth_method].filter((x) => x !== null && x !== '').join(' ');
}

export type HbaDecision =
  | { kind: 'admitted'; line: number }
  /** No rule decides for the slave: the tool adds its own at the top. */
  | { kind: 'add'; why: string }
  /** An operator's rule denies (or demands another method for) this login from this address: policy, never overridden. */
  | { kind: 'refused'; line: number; rule: string; why: string };

/**
 * What the tool may do about the slave's replication login. A rule that matches first (or
 * may match, where this code cannot evaluate it) with a method that cannot use the
 * replication password (reject, cert, peer, ident, gss, ...) is the operator's decision:
 * the pair is refused and the rule quoted, instead of adding a password rule above it.
 */
export function hbaDecision(rules: HbaRule[], user: string, address: string, ssl: boolean): HbaDecision {
  const verdict = admitsReplication(rules, user, address, ssl);
  if (verdict.admitted) return { kind: 'admitted', line: verdict.line };
  if (verdict.line === null) return { kind: 'add', why: verdict.why };
  const rule = rules.find((r) => r.line_number === verdict.line);
  if (rule && PASSWORD_METHODS.has(rule.auth_method ?? '')) return { kind: 'add', why: verdict.why };
  return { kind: 'refused', line: verdict.line, rule: rule ? ruleText(rule) : '(unknown)', why: verdict.why };
}
