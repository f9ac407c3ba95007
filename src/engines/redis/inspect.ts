import type { Server } from '../../model';
import type { Session } from '../engine';
import { Cmd, parseFields, parseInfo, withClient } from './client';

export interface ConnectedReplica {
  ip: string;
  port: number;
  state: string;
  offset: number;
  lag: number;
}

/** Read-only facts about one Redis server. Nothing here holds a password. */
export interface RedisFacts {
  version: string;
  role: 'master' | 'slave';
  masterHost: string | null;
  masterPort: number | null;
  linkUp: boolean;
  syncInProgress: boolean;
  /** During a full sync: the RDB bytes received, of how many (null when the master streams it diskless, size unknown). */
  syncBytes: { read: number; total: number | null } | null;
  /** master_link_down_since_seconds: how long the replica's link has been down (-1: not up since it started). */
  linkDownSeconds: number | null;
  lastIoSecondsAgo: number | null;
  /** uptime_in_seconds. */
  uptimeSeconds: number | null;
  /** What it has produced or passed on (master_repl_offset; a replica reports one too). */
  masterOffset: number;
  /** What it has received from its master (slave_repl_offset), replicas only. */
  replicaOffset: number | null;
  dir: string;
  dbfilename: string;
  replicas: ConnectedReplica[];
  usedMemory: number;
  replBacklogSize: number;
  /** client-output-buffer-limit for replicas: hard bytes, soft bytes, soft seconds. */
  replicaBufferLimit: { hard: number; soft: number; seconds: number };
  configFile: string;
  processId: number;
  syncFull: number;
  /** Random per server start: one server, whatever name reached it. */
  runId: string;
  /** TLS: whether it replicates over TLS, and its own certificate and CA (Redis has one TLS context). */
  tlsReplication: boolean;
  tlsCertFile: string;
  tlsCaCertFile: string;
}

export async function inspectRedis(server: Server, session: Session): Promise<RedisFacts> {
  return withClient(session, server, readFacts);
}

const CONFIG_KEYS = ['dir', 'dbfilename', 'repl-backlog-size', 'client-output-buffer-limit', 'tls-replication', 'tls-cert-file', 'tls-ca-cert-file'];

/** The settings inspection reads, in one CONFIG GET (Redis 7 takes several names). */
async function configs(redis: Cmd): Promise<Record<string, string>> {
  const r = (await redis.call('CONFIG', 'GET', ...CONFIG_KEYS)) as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < r.length; i += 2) out[r[i]!] = r[i + 1]!;
  return out;
}

export async function readFacts(redis: Cmd): Promise<RedisFacts> {
  const info = parseInfo(String(await redis.call('INFO', 'all')));
  const replicas: ConnectedReplica[] = [];
  for (const [k, v] of Object.entries(info)) {
    if (!/^slave\d+$/.test(k)) continue;
    const f = parseFields(v);
    replicas.push({ ip: f.ip ?? '', port: Number(f.port), state: f.state ?? '', offset: Number(f.offset), lag: Number(f.lag) });
  }
  const conf = await configs(redis);
  const limits = (conf['client-output-buffer-limit'] ?? '').split(/\s+/);
  const i = limits.indexOf('slave') >= 0 ? limits.indexOf('slave') : limits.indexOf('replica');
  const role = info.role === 'slave' ? 'slave' : 'master';
  const num = (k: string): number | null => (info[k] === undefined || info[k] === '' ? null : Number(info[k]));
  return {
    version: info.redis_version ?? '',
    role,
    masterHost: role === 'slave' ? (info.master_host ?? null) : null,
    masterPort: role === 'slave' ? num('master_port') : null,
    linkUp: info.master_link_status === 'up',
    syncInProgress: info.master_sync_in_progress === '1',
    syncBytes:
      info.master_sync_in_progress === '1' && info.master_sync_read_bytes !== undefined
        ? { read: Number(info.master_sync_read_bytes), total: Number(info.master_sync_total_bytes) > 0 ? Number(info.master_sync_total_bytes) : null }
        : null,
    linkDownSeconds: num('master_link_down_since_seconds'),
    lastIoSecondsAgo: num('master_last_io_seconds_ago'),
    uptimeSeconds: num('uptime_in_seconds'),
    masterOffset: Number(info.master_repl_offset ?? 0),
    replicaOffset: role === 'slave' ? num('slave_repl_offset') : null,
    dir: conf.dir ?? '',
    dbfilename: conf.dbfilename ?? '',
    replicas,
    usedMemory: Number(info.used_memory_dataset ?? info.used_memory ?? 0),
    replBacklogSize: Number(info.repl_backlog_size ?? conf['repl-backlog-size'] ?? 0),
    replicaBufferLimit: { hard: Number(limits[i + 1] ?? 0), soft: Number(limits[i + 2] ?? 0), seconds: Number(limits[i + 3] ?? 0) },
    configFile: info.config_file ?? '',
    processId: Number(info.process_id ?? 0),
    syncFull: Number(info.sync_full ?? 0),
    runId: info.run_id ?? '',
    tlsReplication: conf['tls-replication'] === 'yes',
    tlsCertFile: conf['tls-cert-file'] ?? '',
    tlsCaCertFile: conf['tls-ca-cert-file'] ?? '',
  };
}
