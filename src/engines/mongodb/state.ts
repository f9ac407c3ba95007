import { copyPath, CopyPattern } from '../../hosts/copies';
import type { Pair, Server } from '../../model';
import { bothSides, Identity, Inspection, LiveLink, PairLive } from '../engine';
import { linkDown } from '../link';
import { memberAddress, type MongoFacts, type StatusMember } from './inspect';

/** Member states (replSetGetStatus `state`). */
export const ST = { STARTUP: 0, PRIMARY: 1, SECONDARY: 2, RECOVERING: 3, STARTUP2: 5, UNKNOWN: 6, ARBITER: 7, DOWN: 8, ROLLBACK: 9, REMOVED: 10 } as const;

/** The default service of a Debian/Ubuntu mongod package. */
export const DEFAULT_SERVICE = { stop: 'systemctl stop mongod', start: 'systemctl start mongod' };
export const service = (server: Server): { stop: string; start: string } => server.service ?? DEFAULT_SERVICE;

/** The data directory: the file's data_dir, else what the server runs on (storage.dbPath). */
export const dataDirOf = (server: Server, f: Pick<MongoFacts, 'dbPath'>): string => (server.dataDir ?? f.dbPath).replace(/\/+$/, '');

/** A kept data directory sits next to it, as for PostgreSQL. */
export function copies(f: Pick<MongoFacts, 'dbPath'>): CopyPattern {
  return { base: f.dbPath.replace(/\/+$/, ''), suffix: '', kind: 'directory' };
}

export function preservedPath(dataDir: string, stamp: string): string {
  return copyPath({ base: dataDir, suffix: '', kind: 'directory' }, stamp);
}

/** The machine's name, its data directory and port: one mongod whatever name reached it. */
export function identity(f: MongoFacts): Identity {
  return { key: `${f.host.replace(/:\d+$/, '')}|${f.dbPath}|${f.port}`, text: `host ${f.host}, dbPath ${f.dbPath}, port ${f.port}` };
}

/** The slave's entry in the master's config: by the address the file gives, or the one the slave calls itself (`me`). */
export function configEntry(m: MongoFacts, slave: Server, s: MongoFacts | null) {
  const names = new Set([memberAddress(slave), ...(s?.me ? [s.me] : [])]);
  return m.configMembers.find((c) => names.has(c.host));
}

function statusEntry(m: MongoFacts, host: string): StatusMember | undefined {
  return m.members.find((x) => x.name === host);
}


export function pairState(pair: Pair, master: Inspection<MongoFacts>, slave: Inspection<MongoFacts>): PairLive {
  const none = { lagSeconds: null, lagBytes: null, masterKeepsSlave: false };
  const sides = bothSides(master, slave);
  if ('live' in sides) return sides.live;
  const { m, s } = sides;
  const entry = m.setName ? configEntry(m, pair.slave, s) : undefined;
  if (!entry) {
    if (!s.replSetName) return { state: 'standalone', ...none, error: null };
    if (s.setName && s.setName !== m.setName) return { state: 'other-master', ...none, error: `slave is a member of replica set ${s.setName}${s.primary ? ` (primary ${s.primary})` : ''}, not of ${pair.master.ref}'s` };
    if (s.setName && s.setName === m.setName) return { state: 'other-master', ...none, error: `slave is a member of a replica set named ${s.setName} that ${pair.master.ref} is not the primary of` };
    // Started with a set name but in no set's config: neither replicating nor writable.
    const why = s.removed ? 'removed from its replica set (REMOVED)' : 'started with a replica-set name but not a member of any set (STARTUP)';
    return { state: 'broken', ...none, masterKeepsSlave: false, error: `slave is ${why}: it takes no writes and replicates nothing` };
  }
  // Restarted standalone by hand while the set still lists it: a writable server, as for the other engines' promoted slaves.
  if (!s.replSetName) return { state: 'standalone', ...none, masterKeepsSlave: true, error: `runs standalone although ${m.setName}'s config still lists it as ${entry.host}` };
  const keeps = { masterKeepsSlave: true };
  const st = statusEntry(m, entry.host);
  const primary = m.members.find((x) => x.self);
  if (!st || !primary) return { state: 'lagging', lagSeconds: null, lagBytes: null, ...keeps, error: `a member of ${m.setName}, not in its status yet` };
  if (st.health === 0 || st.state === ST.DOWN) {
    // The primary cannot reach it (heartbeats): the slave stopped, restarting or cut off.
    const outage = st.lastHeardSeconds !== null ? { seconds: st.lastHeardSeconds, basis: 'measured' as const, note: 'since the primary last heard from it' } : { seconds: null, basis: 'measured' as const, note: 'the primary never heard from it since its own start' };
    return linkDown(pair, outage, `the primary cannot reach the member (${st.lastHeartbeatMessage || 'no heartbeat'})`, { masterKeepsSlave: true });
  }
  if (st.state === ST.STARTUP || st.state === ST.STARTUP2 || st.state === ST.UNKNOWN) {
    return { state: 'lagging', lagSeconds: null, lagBytes: null, ...keeps, error: `initial sync in progress (${st.stateStr})` };
  }
  if (st.state === ST.RECOVERING || st.state === ST.ROLLBACK) {
    return { state: 'lagging', lagSeconds: null, lagBytes: null, ...keeps, error: `member is ${st.stateStr}` };
  }
  if (st.state !== ST.SECONDARY) return { state: 'other-master', lagSeconds: null, lagBytes: null, ...keeps, error: `member is ${st.stateStr} in ${m.setName}, not a secondary of ${pair.master.ref}` };
  const lagSeconds = primary.optimeMs > 0 && st.optimeMs > 0 ? Math.max(0, Math.round((primary.optimeMs - st.optimeMs) / 1000)) : null;
  if (lagSeconds !== null && lagSeconds > pair.maxLagSeconds) {
    return { state: 'lagging', lagSeconds, lagBytes: null, ...keeps, error: `secondary ${lagSeconds}s behind the primary's optime (over max_lag ${pair.maxLagSeconds}s)` };
  }
  return { state: 'replicating', lagSeconds, lagBytes: null, ...keeps, error: null };
}

/**
 * Membership, not sync sources: every declared server in a primary's config is a live link
 * from that primary (a chained secondary still belongs to it). After an election the
 * declared slave may be the primary: that link is its pair seen the other way round, which
 * drift leaves alone. Members the file does not declare are named in plan warnings.
 */
export function liveLinks(inspections: Array<Inspection<MongoFacts>>, servers: Server[]): LiveLink[] {
  const links: LiveLink[] = [];
  for (const insp of inspections) {
    if (!insp.ok || !insp.facts.isWritablePrimary || !insp.facts.setName) continue;
    for (const member of insp.facts.configMembers) {
      const server = servers.find((sv) => sv.engine === 'mongodb' && sv.ref !== insp.server.ref && memberAddress(sv) === member.host);
      if (server) links.push({ slave: server, master: insp.server, upstream: `${insp.facts.setName} member ${member.host}` });
    }
  }
  return links;
}

/** Members of the master's set that the file does not declare (a warning: the file does not own them). */
export function undeclaredMembers(m: MongoFacts, declared: Server[]): string[] {
  const known = new Set(declared.map(memberAddress));
  return m.configMembers.filter((c) => !known.has(c.host) && c.host !== m.me).map((c) => c.host);
}
