import { createHash } from 'node:crypto';
import type { Pair, Server } from '../../model';
import { copyPath, CopyPattern } from '../../hosts/copies';
import { humanBytes } from '../../util/bytes';
import { bothSides, Identity, Inspection, LiveLink, PairLive } from '../engine';
import { diverged, linkDown, Outage } from '../link';
import { lsnDistance, lsnToBigInt } from './lsn';
import type { PgFacts } from './inspect';

const MAX_IDENTIFIER = 63;

/**
 * One physical slot per slave, named after it so it is recognisable on the master:
 * `dbrepl_<application>__<server>`. Where that could be ambiguous (a name with `--`) or
 * too long for an identifier, a short hash of the reference keeps it unique.
 */
export function slotName(pair: Pair): string {
  const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, '_');
  const base = `dbrepl_${slug(pair.slave.app)}__${slug(pair.slave.name)}`;
  if (base.length <= MAX_IDENTIFIER && !pair.slave.app.includes('--') && !pair.slave.name.includes('--')) return base;
  const hash = createHash('sha256').update(pair.slave.ref).digest('hex').slice(0, 8);
  return `${base.slice(0, MAX_IDENTIFIER - hash.length - 1)}_${hash}`;
}

/** Master-side settings that can only change with a restart, and what they must become. */
export function restartSettings(m: PgFacts, slot: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (m.walLevel === 'minimal') out.wal_level = 'replica';
  // pg_basebackup -X stream holds two WAL senders while it copies.
  const senders = m.clients.length + 2;
  if (m.maxWalSenders < senders) out.max_wal_senders = String(Math.max(10, senders + 2));
  const slots = m.slots.length + (m.slots.some((s) => s.name === slot) ? 0 : 1);
  if (m.maxReplicationSlots < slots) out.max_replication_slots = String(Math.max(10, slots + 2));
  return out;
}

function endpoint(host: string | null, port: number | null): string {
  return `${host ?? '?'}:${port ?? 5432}`;
}

/** Where a standby says it pulls from: the live WAL receiver first, else primary_conninfo. */
interface Upstream {
  host: string | null;
  port: number | null;
  slot: string | null;
  applicationName: string | null;
}

function upstreamOf(s: PgFacts): Upstream | null {
  const applicationName = s.upstream?.applicationName ?? null;
  if (s.receiver && s.receiver.senderHost) {
    return { host: s.receiver.senderHost, port: s.receiver.senderPort, slot: s.receiver.slotName, applicationName };
  }
  if (s.upstream && s.upstream.host) return { host: s.upstream.host, port: s.upstream.port ?? 5432, slot: s.primarySlotName, applicationName };
  return null;
}

function follows(up: Upstream, master: Server, m: PgFacts | null): boolean {
  if (up.host && up.host.toLowerCase() === master.host.toLowerCase() && (up.port ?? 5432) === master.port) return true;
  if (!m) return false;
  // Same server under another name (an IP for a host name): the master holds the slot and a live sender on it ...
  if (up.slot) {
    const slot = m.slots.find((x) => x.name === up.slot && x.active);
    if (slot && m.clients.some((c) => c.pid === slot.activePid)) return true;
  }
  // ... or serves a sender under the application_name the slave connects with (when it is not the default).
  return !!up.applicationName && up.applicationName !== 'walreceiver' && m.clients.some((c) => c.applicationName === up.applicationName);
}

export function pairState(pair: Pair, master: Inspection<PgFacts>, slave: Inspection<PgFacts>): PairLive {
  const slot = slotName(pair);
  const none = { lagSeconds: null, lagBytes: null };
  const sides = bothSides(master, slave);
  if ('live' in sides) {
    // The master cannot be inspected (stopped, restarting, out of reach): a slave that still
    // follows it and waits to reconnect is reconnecting (or broken after resync_after), not unreachable.
    if (!master.ok && slave.ok) return slaveOnly(pair, slave.facts, master.error) ?? sides.live;
    return sides.live;
  }
  const { m, s } = sides;
  const masterKeepsSlave = m.slots.some((x) => x.name === slot);
  if (!s.inRecovery) return { state: 'standalone', ...none, error: null, masterKeepsSlave };

  const up = upstreamOf(s);
  if (!up) {
    return { state: 'broken', ...none, error: 'slave is in recovery but has no primary_conninfo: it follows no server', masterKeepsSlave };
  }
  if (!follows(up, pair.master, m)) {
    return { state: 'other-master', ...none, error: `slave follows ${endpoint(up.host, up.port)}, not ${pair.master.ref} (${pair.master.host}:${pair.master.port})`, masterKeepsSlave };
  }
  if (!s.receiver || s.receiver.status !== 'streaming') return notStreaming(pair, s, m, null, masterKeepsSlave);
  const lagBytes = lsnDistance(m.lsn, s.lsn);
  const slotRow = m.slots.find((x) => x.name === slot);
  const client = m.clients.find((c) => c.applicationName === slot || (slotRow?.activePid != null && c.pid === slotRow.activePid));
  let lagSeconds: number | null = client ? (client.replayLagSeconds ?? 0) : null;
  if (lagSeconds === null) lagSeconds = lagBytes === 0 ? 0 : (s.replayAgeSeconds ?? null);
  if (lagSeconds !== null) lagSeconds = Math.round(lagSeconds * 1000) / 1000;
  if (lagSeconds !== null && lagSeconds > pair.maxLagSeconds) {
    return { state: 'lagging', lagSeconds, lagBytes, error: `replay lag ${lagSeconds}s is over max_lag ${pair.maxLagSeconds}s`, masterKeepsSlave };
  }
  return { state: 'replicating', lagSeconds, lagBytes, error: null, masterKeepsSlave };
}

/** The master could not be inspected: judged from the slave alone, when it is a standby of the declared master that is not streaming. */
function slaveOnly(pair: Pair, s: PgFacts, masterError: string): PairLive | null {
  if (!s.inRecovery) return null;
  const up = upstreamOf(s);
  if (!up || !follows(up, pair.master, null)) return null;
  if (s.receiver && s.receiver.status === 'streaming') return null;
  return notStreaming(pair, s, null, `${pair.master.ref} unreachable: ${masterError}`, false);
}

/**
 * A standby of the declared master whose WAL receiver is not streaming. Divergence (a timeline
 * fork, its slot lost, WAL it needs gone) is broken at once; anything else is taken for a
 * connection problem (PostgreSQL keeps no reason for it outside its log) and is reconnecting
 * until the outage passes resync_after.
 */
function notStreaming(pair: Pair, s: PgFacts, m: PgFacts | null, masterError: string | null, masterKeepsSlave: boolean): PairLive {
  const extras = { masterKeepsSlave };
  if (m) {
    const why = divergence(m, s);
    if (why) return diverged(`slave cannot follow ${pair.master.ref} again: ${why}`, extras);
  }
  const receiver = s.receiver ? `the WAL receiver is ${s.receiver.status}` : 'no WAL receiver is running (the standby retries every wal_retrieve_retry_interval)';
  return linkDown(pair, outageOf(m, s), masterError ? `${receiver}; ${masterError}` : receiver, extras);
}

/** Where the slave stands: the WAL it has received, else what it has replayed. */
function slavePosition(s: PgFacts): string | null {
  return s.receiveLsn ?? s.lsn;
}

function after(a: string, b: string): boolean {
  return lsnToBigInt(a) > lsnToBigInt(b);
}

/** The segment number of a pg_wal file name's last 16 hex digits (log and segment, no timeline). */
export function segmentNumber(logSeg: string, segmentSize: number): bigint {
  const perLog = 0x100000000n / BigInt(segmentSize);
  return BigInt(`0x${logSeg.slice(0, 8)}`) * perLog + BigInt(`0x${logSeg.slice(8, 16)}`);
}

/** Why the slave can never stream from this master again (a rebuild is needed), or null. */
export function divergence(m: PgFacts, s: PgFacts): string | null {
  const used = s.primarySlotName ?? s.receiver?.slotName ?? null;
  const slotRow = used ? m.slots.find((x) => x.name === used) : undefined;
  if (slotRow?.walStatus === 'lost') {
    return `its replication slot ${used} on the master is lost (wal_status lost): WAL it still needed was removed (max_slot_wal_keep_size)`;
  }
  if (used && !slotRow) {
    return `it streams through the replication slot ${used}, which the master does not have (dropped?); the WAL it needs may be gone`;
  }
  const pos = slavePosition(s);
  if (!m.inRecovery && pos && m.lsn && m.timeline !== null && s.timeline !== null) {
    if (s.timeline > m.timeline) {
      return `timeline fork: the slave is on timeline ${s.timeline}, newer than the master's ${m.timeline} (was it promoted?)`;
    }
    if (s.timeline < m.timeline && m.timelineHistory) {
      const left = m.timelineHistory.find((h) => h.tli === s.timeline);
      if (!left) return `timeline fork: the slave's timeline ${s.timeline} is not in the master's history (timeline ${m.timeline})`;
      if (after(pos, left.switchpoint)) {
        return `timeline fork: the slave is at ${pos} on timeline ${s.timeline}, past ${left.switchpoint} where the master's history left that timeline`;
      }
    }
    // The link is down, so the slave's position is fixed while the master's only grows.
    if (s.timeline === m.timeline && after(pos, m.lsn)) {
      return `the slave is ahead of the master's WAL on timeline ${s.timeline} (slave at ${pos}, master at ${m.lsn}): the master's WAL went back (restored from a backup?)`;
    }
  }
  if (!used && !s.hasRestoreCommand && pos && m.oldestWalSegment) {
    const needed = lsnToBigInt(pos) / BigInt(m.walSegmentSize);
    if (needed < segmentNumber(m.oldestWalSegment, m.walSegmentSize)) {
      return `the WAL it needs (from ${pos}) has been removed from the master ("requested WAL segment ... has already been removed"): it uses no slot there and has no restore_command`;
    }
  }
  return null;
}

/**
 * How long the link has been down. PostgreSQL 15 keeps no "down since": the WAL receiver's
 * last message time (pg_stat_wal_receiver) goes with the receiver process. So:
 * - the master can be read and the slave has received all the WAL it has (an idle master, or a
 *   master that shut down and came back): the slave missed nothing, the outage counts as 0 s;
 * - otherwise the time since the slave last received WAL is an upper bound of the outage (the
 *   link was up then): the smaller of the age of the newest WAL file the slave wrote and the
 *   time since pg_last_xact_replay_timestamp(). A master that shuts down cleanly streams its
 *   shutdown checkpoint first, so for a stopped master the first is when it stopped; after a
 *   crash, or on a quiet master, it overstates. A pair whose master cannot be read is never
 *   rebuilt (nothing to copy from), so an overstated bound only labels it broken early.
 */
export function outageOf(m: PgFacts | null, s: PgFacts): Outage {
  const pos = slavePosition(s);
  if (m && m.lsn && pos && !after(m.lsn, pos)) {
    return { seconds: 0, basis: 'nothing-missed', note: `the slave has all the WAL the master has (${m.lsn})` };
  }
  const bounds = [s.walWriteAgeSeconds, s.replayAgeSeconds].filter((x): x is number => x !== null && Number.isFinite(x));
  if (bounds.length === 0) return { seconds: null, basis: 'at-most', note: 'the slave shows no time it last received WAL' };
  return { seconds: Math.max(0, Math.min(...bounds)), basis: 'at-most', note: 'since the slave last received WAL' };
}

/**
 * The replication slots dbrepl made (`dbrepl_...`) that no slave is using, with the WAL each
 * makes its server keep (pg_current_wal_lsn() - restart_lsn): an inactive slot keeps WAL
 * without limit (or up to max_slot_wal_keep_size), so a slave that is gone fills its master's
 * disk. Keyed by the name of the pair whose plan says it: the declared pair whose master holds
 * the slot and whose slave it is named after; a slot no declared pair owns is said on the first
 * selected pair of the server that holds it (as master, else as slave). Pure.
 */
export function slotWarnings(
  declared: Pair[],
  selected: Pair[],
  factsOf: (server: Server) => PgFacts | null,
  identityOf: (server: Server) => string,
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const say = (pair: Pair, text: string): void => void (out.get(pair.name) ?? out.set(pair.name, []).get(pair.name)!).push(text);
  const pg = selected.filter((p) => p.engine === 'postgresql');
  const holders = new Map<string, Server>();
  for (const p of pg) for (const sv of [p.master, p.slave]) if (!holders.has(identityOf(sv))) holders.set(identityOf(sv), sv);
  for (const [id, holder] of holders) {
    const f = factsOf(holder);
    if (!f) continue;
    for (const slot of f.slots) {
      if (!slot.name.startsWith('dbrepl_') || slot.active) continue;
      const held = describeHeld(f, slot);
      const owner = declared.find((p) => p.engine === 'postgresql' && identityOf(p.master) === id && slotName(p) === slot.name);
      if (owner) {
        if (selected.includes(owner)) {
          say(owner, `replication slot ${slot.name} on ${holder.ref} (this pair's) is inactive and ${held}: the master keeps that WAL until ${owner.slave.ref} streams again`);
        }
        continue;
      }
      const target = pg.find((p) => identityOf(p.master) === id) ?? pg.find((p) => identityOf(p.slave) === id);
      if (target) {
        say(target, `replication slot ${slot.name} on ${holder.ref} is inactive, ${held}, and no pair of the file owns it (its slave is no longer declared?): if nothing uses it, drop it there with SELECT pg_drop_replication_slot('${slot.name}')`);
      }
    }
  }
  return out;
}

function describeHeld(f: PgFacts, slot: PgFacts['slots'][number]): string {
  if (slot.walStatus === 'lost') return 'is lost (wal_status lost: the WAL its slave needed is gone; it holds none)';
  const bytes = slot.restartLsn && f.lsn ? lsnDistance(f.lsn, slot.restartLsn) : null;
  const size = bytes === null ? 'holds WAL (how much cannot be told: no restart_lsn)' : `holds ${humanBytes(bytes)} of WAL`;
  const limit = f.maxSlotWalKeepBytes === null ? ', without limit (max_slot_wal_keep_size -1)' : `, up to max_slot_wal_keep_size ${humanBytes(f.maxSlotWalKeepBytes)}`;
  return `${size} there${slot.walStatus === 'unreserved' ? ' (wal_status unreserved: some of it goes at the next checkpoint)' : limit}`;
}

/** The data directory moved aside, next to it. */
export function copies(facts: Pick<PgFacts, 'dataDirectory'>): CopyPattern {
  return { base: facts.dataDirectory.replace(/\/+$/, ''), suffix: '', kind: 'directory' };
}

export function preservedPath(dataDir: string, stamp: string): string {
  return copyPath(copies({ dataDirectory: dataDir }), stamp);
}

export const DEFAULT_SERVICE = { stop: 'systemctl stop postgresql', start: 'systemctl start postgresql' };
export const STOP_TIMEOUT_MS = 120_000;
export const START_TIMEOUT_MS = 180_000;

export function service(server: Server): { stop: string; start: string } {
  return server.service ?? DEFAULT_SERVICE;
}

/**
 * One server whatever name reached it: a standby shares its primary's system identifier,
 * so the data directory, port and start time (to the microsecond) are part of it.
 */
export function identity(f: PgFacts): Identity {
  return {
    key: `${f.systemId}|${f.dataDirectory}|${f.port}|${f.startTime}`,
    text: `system_identifier ${f.systemId}, data directory ${f.dataDirectory}, port ${f.port}, started ${f.startTime}`,
  };
}

/** Standbys among declared servers and which declared server (if any) they follow. */
export function liveLinks(inspections: Array<Inspection<PgFacts>>, servers: Server[]): LiveLink[] {
  const byRef = new Map(inspections.filter((i) => i.ok).map((i) => [i.server.ref, i as Extract<Inspection<PgFacts>, { ok: true }>]));
  const links: LiveLink[] = [];
  for (const insp of byRef.values()) {
    if (!insp.facts.inRecovery) continue;
    const up = upstreamOf(insp.facts);
    if (!up) continue;
    const master = servers.find((sv) => sv.ref !== insp.server.ref && sv.engine === 'postgresql' && follows(up, sv, byRef.get(sv.ref)?.facts ?? null)) ?? null;
    links.push({ slave: insp.server, master, upstream: endpoint(up.host, up.port) });
  }
  return links;
}
