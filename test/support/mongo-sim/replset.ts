/**
 * A MongoDB 7.0 replica-set SIMULATOR for the tests (no mongod can be installed on this
 * machine). Several wire-protocol peers, one per port, share one state machine per replica
 * set and answer as a 7.0 server does (see MONGODB.md of the lab notes for the sources):
 *
 * - `hello`/`isMaster`: standalone, not-initiated or removed (RSGhost: `isreplicaset`), member
 *   (setName, setVersion, hosts/passives, primary, me, electionId on the primary);
 * - `replSetGetStatus` (76 standalone, 94 not initiated, 93 removed; members with health,
 *   state/stateStr, optimes, `(not reachable/healthy)`, initialSyncStatus in STARTUP2);
 * - `replSetGetConfig` (newlyAdded hidden); `replSetInitiate` (76, 23, 93, 74, 110);
 * - `replSetReconfig` with the server's order of checks and codes: 76/94, 10107 off the
 *   primary, 93 for what does not parse (votes, priority of a non-voter, newlyAdded given,
 *   another set name), newlyAdded added to new voting members, 103 for what does not
 *   validate (members, duplicate _id or host, voters 1..7, an electable member, version and
 *   term greater, at most one voting change, a host's _id changed), 74 self not in it, 104
 *   self not electable, 74 the quorum check; then the server's own reconfig dropping
 *   newlyAdded once that member is SECONDARY (version + 1);
 * - a new member walks STARTUP -> STARTUP2 (initial sync, `initialSyncMs`) -> SECONDARY and
 *   gets the primary's data; secondaries apply the primary's writes; a primary that cannot
 *   see a majority of voters steps down; an election picks a SECONDARY after `electionMs`;
 * - insert/find/update/delete/count, listDatabases, serverStatus, getCmdLineOpts, buildInfo.
 *
 * Each node reads its YAML config file (`storage.dbPath`, `net.port`,
 * `replication.replSetName`) when it starts, as mongod does; its data lives in that dbPath
 * (so a directory moved aside takes the data with it), with `mongod.lock` holding its pid
 * while it runs. Nodes are stopped and started through a small HTTP control port, which the
 * `service` commands of replication.yml call with curl.
 *
 * Not modelled: authentication (SCRAM) and TLS, topologyVersion and the streaming hello
 * (so the driver polls), arbiters, hidden/delayed members' effects, write concerns, rollback,
 * oplog truncation (no member is ever too stale), chained sync sources, step-down and freeze
 * commands, force reconfig's random version bump, and real timing.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { EJSON, Long, ObjectId, Timestamp, type Document } from 'bson';
import YAML from 'yaml';
import { ServerError, WireServer } from './wire';

export const STATE_STR: Record<number, string> = { 0: 'STARTUP', 1: 'PRIMARY', 2: 'SECONDARY', 3: 'RECOVERING', 5: 'STARTUP2', 6: 'UNKNOWN', 7: 'ARBITER', 8: 'DOWN', 9: 'ROLLBACK', 10: 'REMOVED' };
const [STARTUP, PRIMARY, SECONDARY, STARTUP2, REMOVED] = [0, 1, 2, 5, 10];

interface Entry {
  index: number;
  wall: Date;
  db: string;
  coll: string;
  op: 'i' | 'u' | 'd';
  doc: Document;
}

interface SetState {
  /** replicaSetId as hex: the set's identity (its name is not). */
  id: string;
  name: string;
  /** The stored config, newlyAdded flags included. */
  config: Document;
  term: number;
  oplog: Entry[];
  primary: string | null;
  /** When the set lost its primary (an election follows after electionMs). */
  leaderlessSince: number;
  replicaSetId: ObjectId;
}

type Dbs = Record<string, Record<string, Document[]>>;

export class SimNode {
  running = false;
  /** Test knobs: the node applies nothing more (lag); peers cannot reach it (health 0). */
  paused = false;
  unreachable = false;
  pid = 0;
  startedAt = 0;
  dbPath = '';
  replSetName: string | null = null;
  dbs: Dbs = {};
  /** The set this node holds a config of (initiated, synced or added), and the oplog index it applied. */
  /** The set (replicaSetId) whose config this node holds; null: none (never initiated, synced or added). */
  setId: string | null = null;
  applied = 0;
  syncUntil = 0;
  wire: WireServer | null = null;

  constructor(
    readonly sim: MongoSim,
    readonly port: number,
    readonly configFile: string,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private get dataFile(): string {
    return path.join(this.dbPath, 'sim-data.json');
  }

  /** Starts as mongod does: reads its config file, refuses a missing dbPath, loads what is there. */
  async start(): Promise<void> {
    if (this.running) return;
    const conf = (YAML.parse(fs.readFileSync(this.configFile, 'utf8')) ?? {}) as Document;
    if (Number(conf.net?.port) !== this.port) throw new Error(`net.port in ${this.configFile} is not ${this.port}`);
    this.dbPath = String(conf.storage?.dbPath ?? '');
    if (!this.dbPath || !fs.existsSync(this.dbPath)) throw new Error(`Data directory ${this.dbPath} not found`);
    this.replSetName = conf.replication?.replSetName ? String(conf.replication.replSetName) : null;
    const saved = fs.existsSync(this.dataFile) ? (EJSON.parse(fs.readFileSync(this.dataFile, 'utf8')) as { dbs: Dbs; setId: string | null; applied: number }) : null;
    this.dbs = saved?.dbs ?? {};
    this.setId = saved?.setId ?? null;
    this.applied = saved?.applied ?? 0;
    this.syncUntil = 0;
    this.pid = this.sim.nextPid++;
    this.startedAt = Date.now();
    this.wire = new WireServer((cmd, conn) => this.sim.command(this, cmd, conn.id));
    await this.wire.listen(this.port);
    fs.writeFileSync(path.join(this.dbPath, 'mongod.lock'), `${this.pid}\n`);
    this.running = true;
    this.sim.tick();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.persist();
    await this.wire?.close();
    this.wire = null;
    fs.writeFileSync(path.join(this.dbPath, 'mongod.lock'), '');
    this.sim.tick();
  }

  persist(): void {
    if (this.dbPath && fs.existsSync(this.dbPath)) fs.writeFileSync(this.dataFile, EJSON.stringify({ dbs: this.dbs, setId: this.setId, applied: this.applied }, { relaxed: false }));
  }

  get hasConfig(): boolean {
    return this.setId !== null;
  }

  userDbs(): string[] {
    return Object.keys(this.dbs).filter((d) => !['admin', 'config', 'local'].includes(d) && Object.values(this.dbs[d]!).some((c) => c.length > 0));
  }
}

export interface SimOptions {
  initialSyncMs?: number;
  electionMs?: number;
}

/** The simulator: nodes, replica sets, what they were sent, and the control port. */
export class MongoSim {
  readonly nodes = new Map<string, SimNode>();
  readonly sets = new Map<string, SetState>();
  /** replSetInitiate and replSetReconfig documents as received, with the node that got them and the reply. */
  readonly received: Array<{ node: string; command: Document; reply: Document }> = [];
  /** One error for the next command of that name (e.g. 109 ConfigurationInProgress). */
  readonly failNext = new Map<string, ServerError>();
  nextPid = 41000;
  private control: http.Server | null = null;
  controlPort = 0;
  private timer: NodeJS.Timeout | null = null;
  readonly initialSyncMs: number;
  readonly electionMs: number;

  constructor(options: SimOptions = {}) {
    this.initialSyncMs = options.initialSyncMs ?? 1200;
    this.electionMs = options.electionMs ?? 300;
  }

  async open(): Promise<void> {
    this.control = http.createServer((req, res) => {
      const m = /^\/(start|stop)\/(\d+)$/.exec(req.url ?? '');
      const node = m ? [...this.nodes.values()].find((n) => n.port === Number(m[2])) : undefined;
      if (!m || !node) {
        res.writeHead(404).end('no such node\n');
        return;
      }
      (m[1] === 'start' ? node.start() : node.stop()).then(
        () => res.writeHead(200).end('ok\n'),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    });
    await new Promise<void>((resolve) => this.control!.listen(0, '127.0.0.1', resolve));
    this.controlPort = (this.control.address() as { port: number }).port;
    this.timer = setInterval(() => this.tick(), 100);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const n of this.nodes.values()) await n.stop();
    await new Promise<void>((resolve) => (this.control ? this.control.close(() => resolve()) : resolve()));
  }

  addNode(port: number, configFile: string): SimNode {
    const node = new SimNode(this, port, configFile);
    this.nodes.set(node.address, node);
    return node;
  }

  /** The `service` lines of a node for replication.yml. */
  service(node: SimNode): { stop: string; start: string } {
    const url = (verb: string): string => `curl -fsS -X POST http://127.0.0.1:${this.controlPort}/${verb}/${node.port}`;
    return { stop: url('stop'), start: url('start') };
  }

  // ---- state ------------------------------------------------------------------------------

  /**
   * The set a node belongs to: the one whose config it holds, or (an empty node started with
   * that set's name) the one whose config lists its address. Sets are told apart by their
   * replicaSetId, as in the server: two sets may share a name.
   */
  private setOf(node: SimNode): SetState | null {
    if (!node.replSetName) return null;
    if (node.setId) return this.sets.get(node.setId) ?? null;
    return [...this.sets.values()].find((x) => x.name === node.replSetName && this.memberOf(x, node.address)) ?? null;
  }

  private memberOf(set: SetState, address: string): Document | undefined {
    return (set.config.members as Document[]).find((m) => m.host === address);
  }

  /** A node's state as itself reports it (null: standalone). */
  stateOf(node: SimNode): number | null {
    if (!node.replSetName) return null;
    const set = this.setOf(node);
    const member = set ? this.memberOf(set, node.address) : undefined;
    if (!member) return node.hasConfig ? REMOVED : STARTUP;
    if (!node.hasConfig) return node.syncUntil ? STARTUP2 : STARTUP;
    return set!.primary === node.address ? PRIMARY : SECONDARY;
  }

  /** Up as heartbeats see it: running, reachable, started with this set's name. */
  private up(set: SetState, address: string): boolean {
    const n = this.nodes.get(address);
    return !!n && n.running && !n.unreachable && n.replSetName === set.name && (n.setId === null || n.setId === set.id);
  }

  private voters(config: Document): Document[] {
    return (config.members as Document[]).filter((m) => m.votes === 1 && !m.newlyAdded);
  }

  private majority(set: SetState): boolean {
    const voters = this.voters(set.config);
    return voters.filter((v) => this.up(set, v.host)).length >= Math.floor(voters.length / 2) + 1;
  }

  /** Moves every set on: initial syncs, replication, the newlyAdded follow-up, step-down and elections. */
  tick(): void {
    const now = Date.now();
    for (const set of this.sets.values()) {
      const primary = set.primary ? this.nodes.get(set.primary) : undefined;
      if (primary && (!primary.running || !this.memberOf(set, primary.address) || !this.majority(set))) {
        set.primary = null;
        set.leaderlessSince = now;
      }
      for (const m of set.config.members as Document[]) {
        const n = this.nodes.get(m.host);
        if (!n?.running || n.replSetName !== set.name || (n.setId !== null && n.setId !== set.id)) continue;
        if (!n.hasConfig) {
          // Added while empty: initial sync from the primary, then SECONDARY.
          const source = set.primary ? this.nodes.get(set.primary) : undefined;
          if (!n.syncUntil && source) n.syncUntil = now + this.initialSyncMs;
          if (n.syncUntil && now >= n.syncUntil && source) {
            n.dbs = structuredClone(source.dbs);
            n.applied = set.oplog.length;
            n.setId = set.id;
            n.syncUntil = 0;
            n.persist();
          }
          continue;
        }
        if (n.address !== set.primary && !n.paused && !n.unreachable && set.primary) this.catchUp(set, n);
      }
      // The server's own reconfig: a newlyAdded member that is SECONDARY loses the flag.
      const grown = (set.config.members as Document[]).filter((m) => m.newlyAdded && this.nodes.get(m.host)?.hasConfig && this.up(set, m.host));
      if (grown.length > 0 && set.primary) {
        set.config = { ...set.config, version: set.config.version + 1, members: (set.config.members as Document[]).map((m) => (grown.includes(m) ? without(m, 'newlyAdded') : m)) };
      }
      if (!set.primary && now - set.leaderlessSince >= this.electionMs && this.majority(set)) {
        const candidates = (set.config.members as Document[])
          .filter((m) => m.priority > 0 && m.votes === 1 && !m.newlyAdded && this.up(set, m.host) && this.nodes.get(m.host)!.hasConfig)
          .sort((a, b) => b.priority - a.priority || a._id - b._id);
        if (candidates[0]) {
          set.primary = candidates[0].host;
          set.term += 1;
          set.config = { ...set.config, term: set.term };
        }
      }
    }
  }

  private catchUp(set: SetState, n: SimNode): void {
    for (const e of set.oplog.slice(n.applied)) applyOp(n.dbs, e);
    if (n.applied !== set.oplog.length) {
      n.applied = set.oplog.length;
      n.persist();
    }
  }

  // ---- commands ---------------------------------------------------------------------------

  async command(node: SimNode, cmd: Document, connectionId: number): Promise<Document> {
    const name = Object.keys(cmd)[0]!;
    const injected = this.failNext.get(name);
    if (injected) {
      this.failNext.delete(name);
      return this.record(node, cmd, () => {
        throw injected;
      });
    }
    const db = String(cmd.$db ?? 'admin');
    switch (name) {
      case 'hello':
      case 'isMaster':
      case 'ismaster':
        return this.hello(node, cmd, connectionId, name !== 'hello');
      case 'ping':
      case 'endSessions':
      case 'killCursors':
        return { ok: 1 };
      case 'buildInfo':
      case 'buildinfo':
        return { version: '7.0.14', versionArray: [7, 0, 14, 0], maxBsonObjectSize: 16777216, ok: 1 };
      case 'serverStatus':
        return { host: `${os.hostname()}:${node.port}`, version: '7.0.14', process: 'mongod', pid: Long.fromNumber(node.pid), uptime: (Date.now() - node.startedAt) / 1000, localTime: new Date(), ok: 1 };
      case 'getCmdLineOpts':
        return {
          argv: ['mongod', '--config', node.configFile],
          parsed: { config: node.configFile, net: { port: node.port, bindIp: '127.0.0.1' }, storage: { dbPath: node.dbPath }, ...(node.replSetName ? { replication: { replSetName: node.replSetName } } : {}) },
          ok: 1,
        };
      case 'listDatabases': {
        const names = [...new Set(['admin', 'config', 'local', ...Object.keys(node.dbs)])];
        const size = (d: string): number => JSON.stringify(node.dbs[d] ?? {}).length + 8192;
        return { databases: names.map((d) => ({ name: d, sizeOnDisk: size(d), empty: !node.dbs[d] })), totalSize: names.reduce((a, d) => a + size(d), 0), ok: 1 };
      }
      case 'replSetGetStatus':
        return this.status(node);
      case 'replSetGetConfig':
        return this.getConfig(node);
      case 'replSetInitiate':
        return this.record(node, cmd, () => this.initiate(node, cmd.replSetInitiate as Document | undefined));
      case 'replSetReconfig':
        return this.record(node, cmd, () => this.reconfig(node, cmd.replSetReconfig as Document, cmd.force === true));
      case 'insert':
      case 'update':
      case 'delete':
        return this.write(node, name, db, cmd);
      case 'find':
      case 'count':
        return this.read(node, name, db, cmd);
      default:
        throw new ServerError(59, 'CommandNotFound', `no such command: '${name}'`);
    }
  }

  private record(node: SimNode, cmd: Document, fn: () => Document): Document {
    try {
      const reply = fn();
      this.received.push({ node: node.address, command: structuredClone(cmd), reply });
      return reply;
    } catch (err) {
      const e = err as ServerError;
      this.received.push({ node: node.address, command: structuredClone(cmd), reply: { ok: 0, code: e.code, codeName: e.codeName, errmsg: e.message } });
      throw err;
    }
  }

  private hello(node: SimNode, cmd: Document, connectionId: number, legacy: boolean): Document {
    const common = { maxBsonObjectSize: 16777216, maxMessageSizeBytes: 48000000, maxWriteBatchSize: 100000, localTime: new Date(), logicalSessionTimeoutMinutes: 30, connectionId, minWireVersion: 0, maxWireVersion: 21, readOnly: false, ok: 1 };
    const primaryKey = legacy ? 'ismaster' : 'isWritablePrimary';
    const head = cmd.helloOk ? { helloOk: true } : {};
    const state = this.stateOf(node);
    if (state === null) return { ...head, [primaryKey]: true, ...common };
    const set = this.setOf(node);
    if (state === STARTUP || state === REMOVED || !set) {
      return { ...head, [primaryKey]: false, secondary: false, info: 'Does not have a valid replica set config', isreplicaset: true, ...common };
    }
    const members = (set.config.members as Document[]).filter((m) => !m.hidden);
    const me = this.memberOf(set, node.address)!;
    return {
      ...head,
      hosts: members.filter((m) => m.priority > 0 && !m.newlyAdded && !m.arbiterOnly).map((m) => m.host),
      passives: members.filter((m) => (m.priority === 0 || m.newlyAdded) && !m.arbiterOnly).map((m) => m.host),
      setName: set.name,
      setVersion: set.config.version,
      [primaryKey]: state === PRIMARY,
      secondary: state === SECONDARY,
      ...(set.primary ? { primary: set.primary } : {}),
      ...(me.priority === 0 || me.newlyAdded ? { passive: true } : {}),
      me: node.address,
      ...(state === PRIMARY ? { electionId: new ObjectId(`7fffffff${set.term.toString(16).padStart(16, '0')}`) } : {}),
      ...common,
    };
  }

  private optimeOf(set: SetState, n: SimNode | undefined): { ts: Timestamp; t: Long; date: Date } {
    if (!n || !n.hasConfig) return { ts: new Timestamp({ t: 0, i: 0 }), t: Long.fromNumber(-1), date: new Date(0) };
    const e = set.oplog[n.applied - 1];
    const date = e?.wall ?? new Date(set.replicaSetId.getTimestamp());
    return { ts: new Timestamp({ t: Math.floor(date.getTime() / 1000), i: n.applied }), t: Long.fromNumber(set.term), date };
  }

  private status(node: SimNode): Document {
    const state = this.stateOf(node);
    if (state === null) throw new ServerError(76, 'NoReplicationEnabled', 'not running with --replSet');
    if (state === STARTUP) throw new ServerError(94, 'NotYetInitialized', 'no replset config has been received');
    if (state === REMOVED) throw new ServerError(93, 'InvalidReplicaSetConfig', 'Our replica set config is invalid or we are not a member of it');
    const set = this.setOf(node)!;
    const now = new Date();
    const voters = this.voters(set.config);
    const members = [...(set.config.members as Document[])].sort((a, b) => a._id - b._id).map((m) => {
      const n = this.nodes.get(m.host);
      const self = m.host === node.address;
      const up = self || this.up(set, m.host);
      const st = up && n ? this.stateOf(n)! : 8;
      const o = this.optimeOf(set, up ? n : undefined);
      const common = { _id: m._id, name: m.host, health: up ? 1 : 0, state: st, stateStr: up ? STATE_STR[st] : '(not reachable/healthy)', uptime: up && n ? Math.floor((Date.now() - n.startedAt) / 1000) : 0, optime: { ts: o.ts, t: o.t }, optimeDate: o.date };
      const source = st === SECONDARY && set.primary ? set.primary : '';
      if (self) return { ...common, syncSourceHost: source, syncSourceId: -1, infoMessage: '', configVersion: set.config.version, configTerm: set.term, self: true, lastHeartbeatMessage: '' };
      return {
        ...common,
        optimeDurable: { ts: o.ts, t: o.t },
        optimeDurableDate: o.date,
        lastHeartbeat: now,
        lastHeartbeatRecv: up ? now : new Date(0),
        pingMs: Long.fromNumber(0),
        lastHeartbeatMessage: up ? '' : `Error connecting to ${m.host} :: caused by :: Connection refused`,
        syncSourceHost: source,
        syncSourceId: -1,
        infoMessage: '',
        configVersion: set.config.version,
        configTerm: set.term,
      };
    });
    const majority = Math.floor(voters.length / 2) + 1;
    return {
      set: set.name,
      date: now,
      myState: state,
      term: Long.fromNumber(set.term),
      syncSourceHost: state === SECONDARY && set.primary ? set.primary : '',
      syncSourceId: -1,
      heartbeatIntervalMillis: Long.fromNumber(2000),
      majorityVoteCount: majority,
      writeMajorityCount: majority,
      votingMembersCount: voters.length,
      writableVotingMembersCount: voters.length,
      ...(state === STARTUP2 ? { initialSyncStatus: { failedInitialSyncAttempts: 0, maxFailedInitialSyncAttempts: 10, initialSyncStart: new Date(node.syncUntil - this.initialSyncMs), approxTotalDataSize: 1, approxTotalBytesCopied: 0 } } : {}),
      members,
      ok: 1,
    };
  }

  private getConfig(node: SimNode): Document {
    const state = this.stateOf(node);
    if (state === null) throw new ServerError(76, 'NoReplicationEnabled', 'not running with --replSet');
    if (state === STARTUP) throw new ServerError(94, 'NotYetInitialized', 'no replset config has been received');
    const set = this.setOf(node)!;
    return { config: { ...set.config, members: (set.config.members as Document[]).map((m) => without(m, 'newlyAdded')) }, ok: 1 };
  }

  private initiate(node: SimNode, given: Document | undefined): Document {
    if (!node.replSetName) throw new ServerError(76, 'NoReplicationEnabled', 'This node was not started with replication enabled.');
    if (node.hasConfig || this.setOf(node)) throw new ServerError(23, 'AlreadyInitialized', 'already initialized');
    const cfg = given ?? { _id: node.replSetName, version: 1, members: [{ _id: 0, host: node.address }] };
    if (cfg._id !== node.replSetName) {
      throw new ServerError(93, 'InvalidReplicaSetConfig', `Rejecting initiate with a set name that differs from command line set name, initiation set name: ${cfg._id}, command line set name: ${node.replSetName}`);
    }
    if ((cfg.version ?? 1) !== 1) throw new ServerError(93, 'InvalidReplicaSetConfig', 'The config version must be 1 for replSetInitiate');
    const members = parseMembers(cfg);
    if (!members.some((m) => m.host === node.address)) throw new ServerError(93, 'InvalidReplicaSetConfig', `No host described in new configuration with {version: 1, term: 0} for replica set ${cfg._id} maps to this node`);
    const others = members.filter((m) => m.host !== node.address);
    const silent = others.filter((m) => {
      const n = this.nodes.get(m.host);
      return !n?.running || n.unreachable || n.replSetName !== node.replSetName || n.hasConfig;
    });
    if (silent.length > 0) {
      throw new ServerError(74, 'NodeNotFound', `replSetInitiate quorum check failed because not all proposed set members responded affirmatively: ${silent.map((m) => `${m.host} failed with Connection refused`).join(', ')}`);
    }
    const withData = others.find((m) => this.nodes.get(m.host)!.userDbs().length > 0);
    if (withData) throw new ServerError(110, 'CannotInitializeNodeWithData', `'${withData.host}' has data already, cannot initiate set.`);
    const replicaSetId = new ObjectId();
    const config = {
      _id: cfg._id,
      version: 1,
      term: 1,
      members,
      protocolVersion: Long.fromNumber(1),
      writeConcernMajorityJournalDefault: true,
      settings: { chainingAllowed: true, heartbeatIntervalMillis: 2000, heartbeatTimeoutSecs: 10, electionTimeoutMillis: 10000, catchUpTimeoutMillis: -1, catchUpTakeoverDelayMillis: 30000, getLastErrorModes: {}, getLastErrorDefaults: { w: 1, wtimeout: 0 }, replicaSetId },
    };
    const id = replicaSetId.toHexString();
    this.sets.set(id, { id, name: node.replSetName, config, term: 0, oplog: [], primary: null, leaderlessSince: Date.now(), replicaSetId });
    node.setId = id;
    node.applied = 0;
    node.persist();
    return given ? { ok: 1 } : { info2: 'no configuration specified. Using a default configuration for the set', me: node.address, ok: 1 };
  }

  private reconfig(node: SimNode, cfg: Document, force: boolean): Document {
    const state = this.stateOf(node);
    if (state === null) throw new ServerError(76, 'NoReplicationEnabled', 'not running with --replSet');
    if (state === STARTUP) throw new ServerError(94, 'NotYetInitialized', 'no replset config has been received');
    if (!cfg || typeof cfg !== 'object') throw new ServerError(93, 'InvalidReplicaSetConfig', 'no configuration specified');
    const set = this.setOf(node)!;
    if (!force && state !== PRIMARY) {
      throw new ServerError(10107, 'NotWritablePrimary', `New config is rejected :: caused by :: replSetReconfig should only be run on a writable PRIMARY. Current state ${STATE_STR[state]};`);
    }
    // Parse (93).
    if (cfg._id !== set.name) throw new ServerError(93, 'InvalidReplicaSetConfig', `Attempting to reconfigure a replica set with name ${cfg._id}, but command line reports ${set.name}; rejecting`);
    if ((cfg.members as Document[] | undefined)?.some((m) => 'newlyAdded' in m)) throw new ServerError(93, 'InvalidReplicaSetConfig', 'Cannot provide newlyAdded field to member config during reconfig.');
    const members = parseMembers(cfg);
    // The server's rewrites: its term; newlyAdded on new voting members.
    const old = set.config.members as Document[];
    const oldIds = new Set(old.map((m) => m._id));
    const next = members.map((m) => (!force && !oldIds.has(m._id) && m.votes === 1 && !m.arbiterOnly ? { ...m, newlyAdded: true } : (old.find((o) => o._id === m._id)?.newlyAdded && m.votes === 1 ? { ...m, newlyAdded: true } : m)));
    const version = Number(cfg.version);
    const term = force ? -1 : set.term;
    // Validate (103).
    const bad = (msg: string): never => {
      throw new ServerError(103, 'NewReplicaSetConfigurationIncompatible', msg);
    };
    if (next.length === 0 || next.length > 50) bad(`Replica set configuration contains ${next.length} members, but must have at least 1 and no more than 50`);
    next.forEach((a, i) =>
      next.forEach((b, j) => {
        if (j <= i) return;
        if (a._id === b._id) bad(`Found two member configurations with same _id field, members.${i}._id == members.${j}._id == ${a._id}`);
        if (a.host === b.host) bad(`Found two member configurations with same host field, members.${i}.host == members.${j}.host == ${a.host}`);
      }),
    );
    const voting = next.filter((m) => m.votes === 1);
    if (voting.length < 1 || voting.length > 7) bad(`Replica set configuration contains ${voting.length} voting members, but must be at least 1 and no more than 7`);
    if (!next.some((m) => m.priority > 0 && !m.arbiterOnly)) bad('Replica set configuration must contain at least one non-arbiter member with priority > 0');
    if (!force && !(version > set.config.version)) {
      bad(`New replica set configuration version and term must be greater than old, but {version: ${version}, term: ${term}} is not greater than {version: ${set.config.version}, term: ${set.term}}`);
    }
    for (const m of next) {
      const was = old.find((o) => o.host === m.host);
      if (was && was._id !== m._id) bad(`New and old configurations both have members with host of ${m.host} but in the new configuration the _id field is ${m._id} and in the old configuration it is ${was._id} for replica set ${set.name}`);
    }
    if (!force) {
      const before = new Set(this.voters(set.config).map((m) => m._id));
      const after = new Set(next.filter((m) => m.votes === 1 && !m.newlyAdded).map((m) => m._id));
      const changed = [...before].filter((id) => !after.has(id)).length + [...after].filter((id) => !before.has(id)).length;
      if (changed > 1) bad('Non force replica set reconfig can only add or remove at most 1 voting member.');
    }
    // Locate self.
    const self = next.find((m) => m.host === node.address);
    if (!self) throw new ServerError(74, 'NodeNotFound', `No host described in new configuration with {version: ${version}, term: ${term}} for replica set ${set.name} maps to this node`);
    if (!force && !(self.priority > 0)) {
      throw new ServerError(104, 'NodeNotElectable', `This node, ${node.address}, with _id ${self._id} is not electable under the new configuration with {version: ${version}, term: ${term}} for replica set ${set.name}`);
    }
    // Quorum check: a majority of the new config's voters answer heartbeats.
    if (!force) {
      const voters = next.filter((m) => m.votes === 1 && !m.newlyAdded);
      const answered = voters.filter((m) => m.host === node.address || this.up(set, m.host));
      const required = Math.floor(voters.length / 2) + 1;
      if (answered.length < required) {
        const silent = voters.filter((m) => !answered.includes(m));
        throw new ServerError(
          74,
          'NodeNotFound',
          `Quorum check failed because not enough voting nodes responded; required ${required} but only the following ${answered.length} voting nodes responded: ${answered.map((m) => m.host).join(', ')}; the following nodes did not respond affirmatively: ${silent.map((m) => `${m.host} failed with Connection refused`).join(', ')}`,
        );
      }
    }
    set.config = { ...set.config, ...cfg, version: force ? version + 10000 + Math.floor(Math.random() * 100000) : version, members: next, ...(force ? { term: -1 } : { term: set.term }) };
    // Members it no longer lists are REMOVED (they keep their data and config).
    this.tick();
    return { ok: 1 };
  }

  private writable(node: SimNode): void {
    const state = this.stateOf(node);
    if (state !== null && state !== PRIMARY) throw new ServerError(10107, 'NotWritablePrimary', 'not primary');
  }

  private write(node: SimNode, name: string, db: string, cmd: Document): Document {
    this.writable(node);
    const coll = String(cmd[name]);
    const docs = ((node.dbs[db] ??= {})[coll] ??= []);
    const set = this.setOf(node);
    const log = (op: Entry['op'], doc: Document): void => {
      if (set) {
        set.oplog.push({ index: set.oplog.length + 1, wall: new Date(), db, coll, op, doc: structuredClone(doc) });
        node.applied = set.oplog.length;
      }
    };
    let n = 0;
    let nModified = 0;
    const writeErrors: Document[] = [];
    if (name === 'insert') {
      (cmd.documents as Document[]).forEach((d, index) => {
        const doc = d._id === undefined ? { _id: new ObjectId(), ...d } : d;
        if (docs.some((x) => same(x._id, doc._id))) {
          writeErrors.push({ index, code: 11000, errmsg: `E11000 duplicate key error collection: ${db}.${coll} index: _id_ dup key: { _id: ${EJSON.stringify(doc._id)} }` });
          return;
        }
        docs.push(doc);
        log('i', doc);
        n++;
      });
    } else if (name === 'update') {
      for (const u of cmd.updates as Document[]) {
        const hit = docs.find((d) => matches(d, u.q));
        if (!hit) continue;
        n++;
        const after = u.u.$set ? { ...hit, ...u.u.$set } : { _id: hit._id, ...u.u };
        docs[docs.indexOf(hit)] = after;
        nModified++;
        log('u', after);
      }
    } else {
      for (const d of cmd.deletes as Document[]) {
        const hits = docs.filter((x) => matches(x, d.q)).slice(0, d.limit === 1 ? 1 : undefined);
        for (const h of hits) {
          docs.splice(docs.indexOf(h), 1);
          log('d', { _id: h._id });
          n++;
        }
      }
    }
    node.persist();
    return { n, ...(name === 'update' ? { nModified } : {}), ...(writeErrors.length ? { writeErrors } : {}), ok: 1 };
  }

  private read(node: SimNode, name: string, db: string, cmd: Document): Document {
    const state = this.stateOf(node);
    if (state !== null && state !== PRIMARY && state !== SECONDARY) throw new ServerError(13436, 'NotPrimaryOrSecondary', 'node is not in primary or recovering state');
    const coll = String(cmd[name]);
    const docs = (node.dbs[db]?.[coll] ?? []).filter((d) => matches(d, (name === 'find' ? cmd.filter : cmd.query) ?? {}));
    if (name === 'count') return { n: docs.length, ok: 1 };
    return { cursor: { firstBatch: docs.slice(0, cmd.limit ? Number(cmd.limit) : undefined), id: Long.fromNumber(0), ns: `${db}.${coll}` }, ok: 1 };
  }
}

/** Members with the server's defaults; what does not parse is 93, with the server's words. */
function parseMembers(cfg: Document): Document[] {
  const invalid = (msg: string): never => {
    throw new ServerError(93, 'InvalidReplicaSetConfig', msg);
  };
  if (!Array.isArray(cfg.members)) invalid('members field must be an array');
  return (cfg.members as Document[]).map((m) => {
    const votes = m.votes === undefined ? 1 : Number(m.votes);
    const priority = m.priority === undefined ? (m.arbiterOnly ? 0 : 1) : Number(m.priority);
    if (typeof m.host !== 'string') invalid('Missing expected field "host"');
    if (!Number.isInteger(Number(m._id)) || Number(m._id) < 0) invalid(`_id field value of ${m._id} is out of range.`);
    if (votes !== 0 && votes !== 1) invalid(`votes field value is ${votes} but must be 0 or 1`);
    if (priority < 0 || priority > 1000) invalid(`priority field value of ${priority} is out of range`);
    if (votes === 0 && priority > 0) invalid('priority must be 0 when non-voting (votes:0)');
    if (m.arbiterOnly && votes === 0) invalid('Arbiter must vote (cannot have 0 votes)');
    return { _id: Number(m._id), host: String(m.host).toLowerCase(), arbiterOnly: !!m.arbiterOnly, buildIndexes: m.buildIndexes ?? true, hidden: !!m.hidden, priority, tags: m.tags ?? {}, secondaryDelaySecs: Long.fromNumber(Number(m.secondaryDelaySecs ?? 0)), votes };
  });
}

function without(doc: Document, key: string): Document {
  const { [key]: _dropped, ...rest } = doc;
  return rest;
}

function same(a: unknown, b: unknown): boolean {
  return EJSON.stringify(a as Document) === EJSON.stringify(b as Document);
}

/** Top-level equality on every field of the filter (what the tool and the tests use). */
function matches(doc: Document, filter: Document): boolean {
  return Object.entries(filter).every(([k, v]) => same(doc[k], v));
}

function applyOp(dbs: Dbs, e: Entry): void {
  const docs = ((dbs[e.db] ??= {})[e.coll] ??= []);
  const i = docs.findIndex((d) => same(d._id, e.doc._id));
  if (e.op === 'd') {
    if (i >= 0) docs.splice(i, 1);
  } else if (i >= 0) docs[i] = structuredClone(e.doc);
  else docs.push(structuredClone(e.doc));
}
