import { createHash } from 'node:crypto';
import type { Pair, Server } from '../../model';
import { copyPath, CopyPattern } from '../../hosts/copies';
import { bothSides, Identity, Inspection, LiveLink, PairLive } from '../engine';
import { lsnDistance } from './lsn';
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
  if ('live' in sides) return sides.live;
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
  if (!s.receiver || s.receiver.status !== 'streaming') {
    const why = s.receiver ? `WAL receiver is ${s.receiver.status}` : 'no WAL receiver is running';
    return { state: 'broken', ...none, error: `slave is not streaming from ${pair.master.ref}: ${why}`, masterKeepsSlave };
  }
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
