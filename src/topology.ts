import { PathIssue, ReadOptions, readConfig, UnsetVariable } from './config/load';
import { NAME_PATTERN, RawConfig } from './config/schema';
import { CAPABILITIES, capabilitiesOf, ENGINE_SERVER_KEYS } from './engines/capabilities';
import type { EngineName } from './engines/names';
import { ConfigError, UsageError } from './errors';
import type { Application, Pair, ReplicationLogin, Server, Topology } from './model';
import type { SecretRegistry } from './secrets';

export type { Application, Pair, ReplicationLogin, Server, Topology };

/** Pure resolution of the parsed file into servers and pairs, with every rule of SPEC section 2. */

export const DEFAULT_PORTS = Object.fromEntries(Object.values(CAPABILITIES).map((c) => [c.name, c.defaultPort])) as Record<EngineName, number>;

export type TopologyIssue = PathIssue;

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
      if (ssh) {
        const at = s.ssh ? [...path, 'ssh'] : ['defaults', 'ssh'];
        if (!ssh.known_hosts && !ssh.host_key) issues.push({ path: at, message: 'ssh needs known_hosts or host_key: host keys are always verified' });
        if (ssh.via && !ssh.known_hosts) issues.push({ path: [...at, 'via'], message: "ssh.via needs known_hosts with the bastion's key (host_key pins the server's host only)" });
      }
      for (const key of ENGINE_SERVER_KEYS) {
        if (s[key] === undefined || capabilitiesOf(s.engine).serverKeys.includes(key)) continue;
        const users = Object.values(CAPABILITIES).filter((c) => c.serverKeys.includes(key)).map((c) => c.name);
        issues.push({ path: [...path, key], message: `${key} applies to ${users.join(', ')} only (this server is ${s.engine})` });
      }
      const tlsRaw = s.tls || config.defaults?.tls ? { ...config.defaults?.tls, ...s.tls } : undefined;
      if (tlsRaw && !tlsRaw.cert !== !tlsRaw.key) {
        issues.push({ path: s.tls ? [...path, 'tls'] : ['defaults', 'tls'], message: 'tls needs both cert and key (a client certificate and its private key), or neither' });
      }
      const server: Server = {
        ref: `${app}/${name}`,
        app,
        name,
        engine: s.engine,
        host: s.host,
        port: s.port ?? capabilitiesOf(s.engine).defaultPort,
        user: s.user,
        password: s.password,
        ssh,
        dataDir: s.data_dir,
        service: s.service,
        replicaSet: s.replica_set ?? 'rs0',
        optionsFile: s.options_file,
        followSymlinks: s.follow_symlinks,
        tls: tlsRaw ? { mode: tlsRaw.mode ?? 'verify-full', ca: tlsRaw.ca, cert: tlsRaw.cert, key: tlsRaw.key } : undefined,
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
    if (capabilitiesOf(master.engine).sameApplicationOnly && master.app !== slave.app) {
      issues.push({
        path: at(slaveKey),
        message: `${master.engine} pairs must stay inside one application (master in ${master.app}, slave in ${slave.app})`,
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
    if (raw.copy !== 'auto' && master.engine !== 'mysql') {
      issues.push({ path: at('copy'), message: `copy: ${raw.copy} is for mysql pairs (MariaDB's physical copy or a logical dump); a ${master.engine} pair copies one way only: remove the key` });
      return;
    }
    const replication: ReplicationLogin = { ...config.defaults?.replication, ...raw.replication };
    if (raw.state === 'enabled' && capabilitiesOf(master.engine).needsReplicationLogin && (!replication.user || !replication.password)) {
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
      resyncAfterSeconds: raw.resync_after,
      catchupTimeoutSeconds: raw.catchup_timeout,
      copyTimeoutSeconds: raw.copy_timeout,
      copy: raw.copy,
      fence: raw.fence,
      replication,
    };
    names.set(name, index);
    slaveOf.set(endpointKey(slave), pair);
    pairs.push(pair);
  });

  for (const pair of pairs) {
    const upstream = slaveOf.get(endpointKey(pair.master));
    if (upstream && !capabilitiesOf(pair.engine).cascading) {
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
/** `--only` (or `--app`) naming something the file does not have. */
export function onlyError(topology: Topology, unknown: string[], flag = '--only'): UsageError {
  return new UsageError(`${flag} names no pair or application: ${unknown.join(', ')}; pairs: ${topology.pairs.map((p) => p.name).join(', ') || '(none)'}; applications: ${topology.applications.map((a) => a.name).join(', ')}`);
}

/** The applications `--only` names: by name, or as the applications of the pairs it names. */
export function selectApplications(topology: Topology, only: string[] | undefined): { apps: string[]; unknown: string[] } {
  const all = topology.applications.map((a) => a.name);
  if (!only || only.length === 0) return { apps: all, unknown: [] };
  const wanted = new Set(only);
  const byPair = topology.pairs.filter((p) => wanted.has(p.name)).flatMap((p) => [p.master.app, p.slave.app]);
  const pairNames = new Set(topology.pairs.map((p) => p.name));
  return { apps: all.filter((a) => wanted.has(a) || byPair.includes(a)), unknown: only.filter((n) => !all.includes(n) && !pairNames.has(n)) };
}

export function selectPairs(topology: Topology, only: string[] | undefined): { pairs: Pair[]; unknown: string[] } {
  if (!only || only.length === 0) return { pairs: topology.pairs, unknown: [] };
  const apps = new Set(topology.applications.map((a) => a.name));
  const pairNames = new Set(topology.pairs.map((p) => p.name));
  const unknown = only.filter((n) => !apps.has(n) && !pairNames.has(n));
  const wanted = new Set(only);
  const pairs = topology.pairs.filter((p) => wanted.has(p.name) || wanted.has(p.master.app) || wanted.has(p.slave.app));
  return { pairs, unknown };
}

export interface LoadedTopology {
  file: string;
  topology: Topology;
  /** `${VAR}`s not set (read with `unset: 'warn'` only). */
  unset: UnsetVariable[];
}

/**
 * Reads replication.yml and resolves it: every rule is checked before any server is
 * touched, and every problem is reported at once with file:line:column and key.
 */
export function loadTopology(file: string, env: NodeJS.ProcessEnv, secrets: SecretRegistry, options: ReadOptions = {}): LoadedTopology {
  return resolveLoaded(readConfig(file, env, secrets, undefined, options), secrets);
}

/** The same from text already read (tests, and files named on stdin later). */
export function parseTopology(text: string, file: string, env: NodeJS.ProcessEnv, secrets: SecretRegistry, options: ReadOptions = {}): LoadedTopology {
  return resolveLoaded(readConfig(file, env, secrets, text, options), secrets);
}

/** Keys whose values the environment variables are computed from: `env` cannot print without them. */
const ENV_INPUTS = [/^applications\.[^.]+\.servers\.[^.]+\.(engine|host|port|replica_set)$/, /^replications\[\d+\]\.(master|slave|primary|replica|state|name)$/];

/** Unset variables that `env` needs the value of, as errors naming them. */
export function unsetForEnv(unset: UnsetVariable[]): ConfigError | null {
  const needed = unset.filter((u) => ENV_INPUTS.some((re) => re.test(u.at.key)));
  if (needed.length === 0) return null;
  return new ConfigError(needed.map((u) => ({ ...u.at, message: `environment variable ${u.name} is not set, and the environment variables are computed from this value; export it` })));
}

function resolveLoaded(loaded: ReturnType<typeof readConfig>, secrets: SecretRegistry): LoadedTopology {
  const resolved = resolveTopology(loaded.raw);
  if (!resolved.ok) throw new ConfigError(loaded.issuesAt(resolved.issues));
  // Credentials are secrets even when written literally in the file (a `${NAME}` left unset is not one).
  const placeholders = loaded.unset.map((u) => `\${${u.name}}`);
  const secret = (v: string | undefined): void => {
    if (v && !placeholders.some((p) => v.includes(p))) secrets.add(v);
  };
  for (const server of resolved.topology.servers.values()) {
    secret(server.password);
    secret(server.ssh?.private_key);
    secret(server.ssh?.passphrase);
    secret(server.tls?.key);
  }
  for (const pair of resolved.topology.pairs) secret(pair.replication.password);
  return { file: loaded.file, topology: resolved.topology, unset: loaded.unset };
}

