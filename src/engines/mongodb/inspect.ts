import type { Document } from 'mongodb';
import type { Server } from '../../model';
import type { Session } from '../engine';
import { Cmd, codeOf, withClient } from './client';

/** One member as the set's config lists it. */
export interface ConfigMember {
  _id: number;
  host: string;
  priority: number;
  votes: number;
  arbiterOnly: boolean;
  hidden: boolean;
}

/** One member as replSetGetStatus shows it (from the server asked). */
export interface StatusMember {
  _id: number;
  name: string;
  health: number;
  state: number;
  stateStr: string;
  self: boolean;
  /** optimeDate in ms since the epoch (0: none yet, as during initial sync). */
  optimeMs: number;
  /** Seconds since a heartbeat from it was last received (null: self, or never). */
  lastHeardSeconds: number | null;
  lastHeartbeatMessage: string;
}

export interface MongoFacts {
  version: string;
  /** serverStatus: host (hostname:port), pid, uptime. */
  host: string;
  pid: number;
  uptimeSeconds: number;
  /** getCmdLineOpts: what it was started with. */
  configFile: string | null;
  dbPath: string;
  port: number;
  replSetName: string | null;
  /** The set name came from the command line (--replSet), not the configuration file. */
  replSetFromArgv: boolean;
  /** hello */
  setName: string | null;
  isWritablePrimary: boolean;
  secondary: boolean;
  primary: string | null;
  me: string | null;
  /** replSetGetStatus: its own state, or null (standalone, not initiated: 94, removed: 93). */
  myState: number | null;
  notInitiated: boolean;
  removed: boolean;
  members: StatusMember[];
  /** replSetGetConfig (null: none). */
  configVersion: number | null;
  configMembers: ConfigMember[];
  /** Databases other than admin, config and local, with their size on disk. */
  userDatabases: Array<{ name: string; bytes: number }>;
  dataBytes: number;
}

const SYSTEM_DBS = new Set(['admin', 'config', 'local']);

export async function inspectMongo(server: Server, session: Session): Promise<MongoFacts> {
  return withClient(session, server, (db) => readFacts(db));
}

export async function readFacts(db: Cmd): Promise<MongoFacts> {
  const [hello, status, opts, build, dbs] = await Promise.all([
    db.command({ hello: 1 }),
    db.command({ serverStatus: 1, repl: 0, metrics: 0, locks: 0 }),
    db.command({ getCmdLineOpts: 1 }),
    db.command({ buildInfo: 1 }),
    db.command({ listDatabases: 1 }),
  ]);
  const parsed = (opts.parsed ?? {}) as Document;
  const replSetName = (parsed.replication?.replSetName as string | undefined) ?? (parsed.replication?.replSet as string | undefined) ?? null;
  let myState: number | null = null;
  let notInitiated = false;
  let removed = false;
  let members: StatusMember[] = [];
  let configVersion: number | null = null;
  let configMembers: ConfigMember[] = [];
  if (replSetName) {
    try {
      const rs = await db.command({ replSetGetStatus: 1 });
      myState = Number(rs.myState);
      const now = new Date(rs.date as Date).getTime();
      members = (rs.members as Document[]).map((m) => ({
        _id: Number(m._id),
        name: String(m.name).toLowerCase(),
        health: Number(m.health),
        state: Number(m.state),
        stateStr: String(m.stateStr),
        self: m.self === true,
        optimeMs: m.optimeDate ? new Date(m.optimeDate as Date).getTime() : 0,
        lastHeardSeconds: m.self || !m.lastHeartbeatRecv || new Date(m.lastHeartbeatRecv as Date).getTime() <= 0 ? null : Math.max(0, Math.round((now - new Date(m.lastHeartbeatRecv as Date).getTime()) / 1000)),
        lastHeartbeatMessage: String(m.lastHeartbeatMessage ?? ''),
      }));
    } catch (err) {
      const code = codeOf(err);
      if (code === 94) notInitiated = true;
      else if (code === 93) removed = true;
      else throw err;
    }
    if (!notInitiated) {
      const cfg = await db.command({ replSetGetConfig: 1 }).catch(() => null);
      if (cfg?.config) {
        configVersion = Number(cfg.config.version);
        configMembers = (cfg.config.members as Document[]).map((m) => ({
          _id: Number(m._id),
          host: String(m.host).toLowerCase(),
          priority: Number(m.priority ?? 1),
          votes: Number(m.votes ?? 1),
          arbiterOnly: m.arbiterOnly === true,
          hidden: m.hidden === true,
        }));
      }
    }
  }
  const userDatabases = (dbs.databases as Document[]).filter((d) => !SYSTEM_DBS.has(String(d.name)) && !d.empty).map((d) => ({ name: String(d.name), bytes: Number(d.sizeOnDisk ?? 0) }));
  return {
    version: String(build.version),
    host: String(status.host ?? ''),
    pid: Number(status.pid ?? 0),
    uptimeSeconds: Number(status.uptime ?? 0),
    configFile: (parsed.config as string | undefined) ?? null,
    dbPath: String(parsed.storage?.dbPath ?? ''),
    port: Number(parsed.net?.port ?? 27017),
    replSetName,
    replSetFromArgv: ((opts.argv as string[] | undefined) ?? []).some((a) => a === '--replSet' || a.startsWith('--replSet=')),
    setName: (hello.setName as string | undefined) ?? null,
    isWritablePrimary: hello.isWritablePrimary === true,
    secondary: hello.secondary === true,
    primary: (hello.primary as string | undefined)?.toLowerCase() ?? null,
    me: (hello.me as string | undefined)?.toLowerCase() ?? null,
    myState,
    notInitiated,
    removed,
    members,
    configVersion,
    configMembers,
    userDatabases,
    dataBytes: Number(dbs.totalSize ?? 0),
  };
}

/** `host:port` as the set lists members. */
export const memberAddress = (server: Server): string => `${server.host}:${server.port}`.toLowerCase();
