import { EngineName, NAME_PATTERN, RawConfig, SshSettings } from './config/schema';

/** Pure resolution of the parsed file into servers and pairs, with every rule of SPEC section 2. */

export const DEFAULT_PORTS: Record<EngineName, number> = {
  postgresql: 5432,
  mysql: 3306,
  redis: 6379,
  mongodb: 27017,
};

/** Engines whose slaves may themselves be masters (SPEC section 2). */
const CASCADING: ReadonlySet<EngineName> = new Set(['postgresql', 'mysql', 'redis']);
/** Engines whose replication needs a login of its own on the master. */
const NEEDS_REPLICATION_LOGIN: ReadonlySet<EngineName> = new Set(['postgresql', 'mysql']);

export interface Server {
  /** `application/server` */
  ref: string;
  app: string;
  name: string;
  engine: EngineName;
  host: string;
  port: number;
  user?: string;
  password?: string;
  ssh?: SshSettings;
  dataDir?: string;
  service?: { stop: string; start: string };
  replicaSet: string;
  optionsFile?: string;
}

export interface ReplicationLogin {
  user?: string;
  password?: string;
}

export interface Pair {
  name: string;
  /** Index in `replications`, for messages that point back at the file. */
  index: number;
  engine: EngineName;
  master: Server;
  slave: Server;
  desired: 'enabled' | 'disabled';
  resync: 'auto' | 'manual';
  maxLagSeconds: number;
  catchupTimeoutSeconds: number;
  replication: ReplicationLogin;
}

export interface Application {
  name: string;
  environment?: string;
  servers: Server[];
}

export interface Topology {
  applications: Application[];
  servers: Map<string, Server>;
  pairs: Pair[];
  prune: boolean;
}

export interface TopologyIssue {
  path: Array<string | number>;
  message: string;
  /** Point at the mapping key itself rather than its value. */
  atKey?: boolean;
}

export type Resolved = { ok: true; topology: Topology } | { ok: false; issues: TopologyIssue[] };

export function resolveTopology(config: RawConfig): Resolved {
  const issues: TopologyIssue[] = [];
  const servers = new Map<string, Server>();
  const applications: Application[] = [];

  for (const [app, appDef] of Object.entries(config.applications)) {
    if (!NAME_PATTERN.test(app)) {
      issues.push({ path: ['applications', app], atKey: true, message: `invalid application name "${app}"; expected [a-z0-9][a-z0-9-]*` });
    }
    const list: Server[] = [];
    for (const [name, s] of Object.entries(appDef.servers)) {
      const path = ['applications', app, 'servers', name];
      if (!NAME_PATTERN.test(name)) {
        issues.push({ path, atKey: true, message: `invalid server name "${name}"; expected [a-z0-9][a-z0-9-]*` });
      }
      const ssh = s.ssh || config.defaults?.ssh ? { ...config.defaults?.ssh, ...s.ssh } : undefined;
      if (ssh && !ssh.known_hosts && !ssh.host_key) {
        issues.push({
          path: s.ssh ? [...path, 'ssh'] : ['defaults', 'ssh'],
          message: 'ssh needs known_hosts or host_key: host keys are always verified',
        });
      }
      if (s.replica_set && s.engine !== 'mongodb') {
        issues.push({ path: [...path, 'replica_set'], message: `replica_set applies to mongodb only (this server is ${s.engine})` });
      }
      if (s.options_file && s.engine !== 'mysql') {
        issues.push({ path: [...path, 'options_file'], message: `options_file applies to mysql only (this server is ${s.engine})` });
      }
      if (s.data_dir && s.engine === 'redis') {
        issues.push({ path: [...path, 'data_dir'], message: 'data_dir applies to postgresql, mysql and mongodb, not redis' });
      }
      const server: Server = {
        ref: `${app}/${name}`,
        app,
        name,
        engine: s.engine,
        host: s.host,
        port: s.port ?? DEFAULT_PORTS[s.engine],
        user: s.user,
        password: s.password,
        ssh,
        dataDir: s.data_dir,
        service: s.service,
        replicaSet: s.replica_set ?? 'rs0',
        optionsFile: s.options_file,
      };
      servers.set(server.ref, server);
      list.push(server);
    }
    applications.push({ name: app, environment: appDef.environment, servers: list });
  }

  const pairs: Pair[] = [];
  // Keyed by the server itself (engine, host, port), so two names for one server cannot
  // give it two masters or hide a cycle.
  const slaveOf = new Map<string, Pair>();
  const names = new Map<string, number>();
  config.replications.forEach((raw, index) => {
    const at = (key: string): Array<string | number> => ['replications', index, key];
    const masterKey = raw.master !== undefined ? 'master' : 'primary';
    const slaveKey = raw.slave !== undefined ? 'slave' : 'replica';
    let broken = false;
    if (raw.master !== undefined && raw.primary !== undefined) {
      issues.push({ path: at('primary'), message: 'give either master or primary (synonyms), not both' });
      broken = true;
    }
    if (raw.slave !== undefined && raw.replica !== undefined) {
      issues.push({ path: at('replica'), message: 'give either slave or replica (synonyms), not both' });
      broken = true;
    }
    const masterRef = raw.master ?? raw.primary;
    const slaveRef = raw.slave ?? raw.replica;
    if (masterRef === undefined) {
      issues.push({ path: ['replications', index, 'master'], message: 'missing master (or primary): expected <application>/<server>' });
      broken = true;
    }
    if (slaveRef === undefined) {
      issues.push({ path: ['replications', index, 'slave'], message: 'missing slave (or replica): expected <application>/<server>' });
      broken = true;
    }
    if (broken || masterRef === undefined || slaveRef === undefined) return;

    const master = lookup(servers, masterRef, at(masterKey), issues);
    const slave = lookup(servers, slaveRef, at(slaveKey), issues);
    if (!master || !slave) return;

    if (master.ref === slave.ref) {
      issues.push({ path: at(slaveKey), message: `${slave.ref} cannot replicate from itself` });
      return;
    }
    if (master.host === slave.host && master.port === slave.port) {
      issues.push({
        path: at(slaveKey),
        message: `${slave.ref} and ${master.ref} are the same server (${slave.host}:${slave.port}); a server cannot be its own slave`,
      });
      return;
    }
    if (master.engine !== slave.engine) {
      issues.push({
        path: at(slaveKey),
        message: `engine mismatch: master ${master.ref} is ${master.engine}, slave ${slave.ref} is ${slave.engine}; both sides must share an engine`,
      });
      return;
    }
    if (master.engine === 'mongodb' && master.app !== slave.app) {
      issues.push({
        path: at(slaveKey),
        message: `mongodb pairs must stay inside one application (master in ${master.app}, slave in ${slave.app})`,
      });
      return;
    }
    const previous = slaveOf.get(endpointKey(slave));
    if (previous) {
      issues.push({
        path: at(slaveKey),
        message: `${slave.ref}${previous.slave.ref !== slave.ref ? ` (the same server as ${previous.slave.ref})` : ''} already has a master (${previous.master.ref}, replications[${previous.index}]); a slave has exactly one master`,
      });
      return;
    }
    const name = raw.name ?? slave.ref;
    const seen = names.get(name);
    if (seen !== undefined) {
      issues.push({ path: at(raw.name ? 'name' : slaveKey), message: `pair name "${name}" is already used by replications[${seen}]` });
      return;
    }
    const replication: ReplicationLogin = { ...config.defaults?.replication, ...raw.replication };
    if (raw.state === 'enabled' && NEEDS_REPLICATION_LOGIN.has(master.engine) && (!replication.user || !replication.password)) {
      issues.push({
        path: raw.replication ? at('replication') : ['replications', index],
        message: `${master.engine} replication needs a login: set replication.user and replication.password on the pair or in defaults`,
      });
      return;
    }
    const pair: Pair = {
      name,
      index,
      engine: master.engine,
      master,
      slave,
      desired: raw.state,
      resync: raw.resync,
      maxLagSeconds: raw.max_lag,
      catchupTimeoutSeconds: raw.catchup_timeout,
      replication,
    };
    names.set(name, index);
    slaveOf.set(endpointKey(slave), pair);
    pairs.push(pair);
  });

  for (const pair of pairs) {
    const upstream = slaveOf.get(endpointKey(pair.master));
    if (upstream && !CASCADING.has(pair.engine)) {
      issues.push({
        path: ['replications', pair.index, 'master'],
        message: `${pair.master.ref} is itself a slave (replications[${upstream.index}]); cascading is not supported for ${pair.engine}`,
      });
    }
  }
  for (const cycle of findCycles(pairs, slaveOf)) {
    issues.push({
      path: ['replications', cycle.index],
      message: `replication cycle: ${cycleText(cycle, slaveOf)}; every chain of slaves must end at a master that replicates from nobody`,
    });
  }

  if (issues.length > 0) return { ok: false, issues: dedupe(issues) };
  return { ok: true, topology: { applications, servers, pairs, prune: config.prune } };
}

function lookup(servers: Map<string, Server>, ref: string, path: Array<string | number>, issues: TopologyIssue[]): Server | undefined {
  const server = servers.get(ref);
  if (server) return server;
  const known = [...servers.keys()];
  const hint = ref.includes('/') ? `known servers: ${known.join(', ') || '(none)'}` : 'expected <application>/<server>';
  issues.push({ path, message: `unknown server "${ref}"; ${hint}` });
  return undefined;
}

/** The identity of a server for the one-master and cycle rules: engine, host, port. */
export function endpointKey(s: Server): string {
  return `${s.engine}:${s.host.toLowerCase()}:${s.port}`;
}

function dedupe(issues: TopologyIssue[]): TopologyIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path.join('.')}\u0000${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** One pair per cycle (the first in file order that lies on it). */
function findCycles(pairs: Pair[], slaveOf: Map<string, Pair>): Pair[] {
  const reported = new Set<string>();
  const found: Pair[] = [];
  for (const start of pairs) {
    const origin = endpointKey(start.slave);
    if (reported.has(origin)) continue;
    const seen = new Set<string>([origin]);
    let p: Pair | undefined = start;
    while (p) {
      const up = endpointKey(p.master);
      if (seen.has(up)) {
        if (up === origin) {
          let q: Pair | undefined = start;
          do {
            reported.add(endpointKey(q!.slave));
            q = slaveOf.get(endpointKey(q!.master));
          } while (q && q !== start);
          found.push(start);
        }
        break;
      }
      seen.add(up);
      p = slaveOf.get(up);
    }
  }
  return found;
}

function cycleText(start: Pair, slaveOf: Map<string, Pair>): string {
  const chain = [start.slave.ref];
  const origin = endpointKey(start.slave);
  let p: Pair | undefined = start;
  while (p) {
    chain.push(p.master.ref);
    if (endpointKey(p.master) === origin) break;
    p = slaveOf.get(endpointKey(p.master));
  }
  return chain.join(' <- ');
}

/** Pairs selected by `--only` (pair names or application names); unknown names are an error for the caller. */
export function selectPairs(topology: Topology, only: string[] | undefined): { pairs: Pair[]; unknown: string[] } {
  if (!only || only.length === 0) return { pairs: topology.pairs, unknown: [] };
  const apps = new Set(topology.applications.map((a) => a.name));
  const pairNames = new Set(topology.pairs.map((p) => p.name));
  const unknown = only.filter((n) => !apps.has(n) && !pairNames.has(n));
  const wanted = new Set(only);
  const pairs = topology.pairs.filter((p) => wanted.has(p.name) || wanted.has(p.master.app) || wanted.has(p.slave.app));
  return { pairs, unknown };
}
