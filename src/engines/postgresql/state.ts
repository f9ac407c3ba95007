import { createHash } from 'node:crypto';
import type { Action, ActionDetails, PairLive } from '../../plan/types';
import type { Pair, Server } from '../../topology';
import { bothSides, Inspection, LiveLink } from '../engine';
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

export function preservedPath(dataDir: string, stamp: string): string {
  return `${dataDir.replace(/\/+$/, '')}.dbrepl-${stamp}`;
}

export function describe(pair: Pair, action: Action, master: Inspection<PgFacts>, slave: Inspection<PgFacts>, stamp: string): ActionDetails {
  const slot = slotName(pair);
  const m = master.ok ? master.facts : null;
  const s = slave.ok ? slave.facts : null;
  const user = pair.replication.user ?? '';
  if (action === 'enable' || action === 'resync') {
    const warnings: string[] = [];
    const steps: string[] = [];
    const restart = m ? restartSettings(m, slot) : {};
    const restartKeys = Object.entries(restart);
    if (restartKeys.length > 0) {
      steps.push(`master: ALTER SYSTEM SET ${restartKeys.map(([k, v]) => `${k}=${v}`).join(', ')} and restart the master`);
      warnings.push(`the master ${pair.master.ref} must restart to change ${restartKeys.map(([k]) => k).join(', ')}`);
    }
    if (m && s && Math.floor(m.versionNum / 10000) !== Math.floor(s.versionNum / 10000)) {
      warnings.push(`major versions differ (master ${m.versionNum}, slave ${s.versionNum}): physical replication needs the same major version; apply will refuse`);
    }
    const dataDir = s?.dataDirectory ?? pair.slave.dataDir ?? null;
    if (pair.slave.dataDir && s && pair.slave.dataDir !== s.dataDirectory) {
      warnings.push(`data_dir ${pair.slave.dataDir} in the file differs from the running server's ${s.dataDirectory}; the running server's is used`);
    }
    const preserved = dataDir ? preservedPath(dataDir, stamp) : null;
    steps.push(
      `preflight: same major version; the slave's admin login works on the master (a physical copy carries the master's roles); the slave's max_connections and similar are not lower than the master's; the slave is not a primary of its own; this host runs the servers; free disk space for the copy next to the kept data`,
      `master: ensure role ${user} (REPLICATION LOGIN, password from the file)`,
      `master: admit ${user} from ${pair.slave.host} for replication in ${m?.hbaFile ?? 'pg_hba.conf'} and reload, unless a rule already does`,
      `master: create physical replication slot ${slot}`,
      `slave: stop the server (${pair.slave.service?.stop ?? DEFAULT_SERVICE.stop})`,
      `slave: move ${dataDir ?? 'the data directory'} aside to ${preserved ?? '(unknown)'}`,
      `slave: pg_basebackup -X stream -R -S ${slot} from ${pair.master.host}:${pair.master.port} (full online backup of the master)`,
      `slave: restore its own configuration files, ownership and permissions`,
      `slave: start the server (${pair.slave.service?.start ?? DEFAULT_SERVICE.start}) and wait until it streams`,
      'on any failure after the stop: the previous data is put back and the slave restarted as it was',
      'env: recompute the environment variables',
    );
    const disruption = restartKeys.length > 0
      ? 'master restarts (brief outage); slave restarts and is rebuilt'
      : 'slave restarts and is rebuilt; master keeps serving';
    return { steps, disruption, preserved, warnings };
  }
  if (action === 'disable') {
    return {
      steps: [
        `master: note the current WAL position`,
        `slave: wait until it has replayed up to that position (at most ${pair.catchupTimeoutSeconds}s)`,
        'slave: promote (pg_promote)',
        'slave: clear primary_conninfo and primary_slot_name',
        `master: drop replication slot ${slot}`,
        'env: recompute the environment variables',
      ],
      disruption: 'slave becomes a standalone writable server; master keeps serving',
      preserved: null,
      warnings: [],
    };
  }
  return { steps: [], disruption: null, preserved: null, warnings: [] };
}

export const DEFAULT_SERVICE = { stop: 'systemctl stop postgresql', start: 'systemctl start postgresql' };

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
