import YAML from 'yaml';
import { DbreplError } from '../../errors';
import { readFile } from '../../hosts/commands';
import type { Host } from '../../hosts/host';
import { checkFreeSpace } from '../../hosts/rebuild';
import type { Pair, Server } from '../../model';
import { checkHostCanWork, finding, Finding, hostOrError, Session, Sides } from '../engine';
import type { ActionPlan, ChangeAction } from '../engine';
import type { MongoFacts } from './inspect';
import { optionsFile, readOptions } from './options';
import { configEntry, dataDirOf, undeclaredMembers } from './state';
import { votersAfter } from './steps';

/** Host commands for this server run where it runs: its dbPath there, and mongod.lock holding its pid. */
export async function verifyHost(host: Host, server: Server, facts: MongoFacts): Promise<void> {
  const lock = (await readFile(host, `${facts.dbPath}/mongod.lock`))?.trim();
  if (lock !== String(facts.pid)) {
    throw new DbreplError('STEP', `host commands for ${server.ref} would run on ${host.label}, which does not run this server (${facts.dbPath}/mongod.lock there does not hold its pid ${facts.pid}); run dbrepl on the server's own host, or give it ssh`);
  }
}

const major = (v: string): string => v.split('.').slice(0, 2).join('.');

/** Checks that change nothing: run by plan, and again by apply before the first change. */
export async function preflight(pair: Pair, { m, s }: Sides<MongoFacts>, planned: { action: ChangeAction; plan: ActionPlan } | null, session: Session): Promise<Finding[]> {
  const out: Finding[] = [];
  const error = (message: string): void => void out.push({ level: 'error', message });
  const warn = (message: string): void => void out.push({ level: 'warning', message });
  const set = pair.master.replicaSet;
  if (m?.setName) {
    const others = undeclaredMembers(m, [pair.master, pair.slave, ...(session.declared ?? []).filter((x) => x.engine === 'mongodb')]);
    if (others.length > 0) warn(`replica set ${m.setName} of ${pair.master.ref} has members the file does not declare: ${others.join(', ')} (dbrepl leaves them alone; declare them to manage them)`);
  }
  if (!planned || !m) return out;
  if (planned.action === 'disable') {
    if (pair.fence) error(`fence is not available for MongoDB: a disable removes a member from the set; the set's primary (${pair.master.ref}) keeps taking writes by design`);
    const entry = m.setName ? configEntry(m, pair.slave, s) : undefined;
    if (entry && !m.isWritablePrimary) error(`${pair.master.ref} is not the primary of ${m.setName}${m.primary ? ` (the primary is ${m.primary})` : ''}: a member is removed by a reconfig on the primary; declare the primary as the pair's master`);
    if (s.replSetName) await slaveChecks(pair, s, session, error, false);
    return out;
  }
  // enable, resync
  if (pair.slave.replicaSet !== set) error(`${pair.slave.ref} has replica_set ${pair.slave.replicaSet} and ${pair.master.ref} ${set}: members of one set share its name`);
  if (m.setName && m.setName !== set) error(`${pair.master.ref} runs replica set ${m.setName}, the file says replica_set ${set}`);
  if (m.replSetName && !m.setName) error(`${pair.master.ref} was started with replSetName ${m.replSetName} but has no replica-set config (${m.removed ? 'removed from its set' : 'never initiated'}): initiate it or restart it standalone first`);
  if (m.setName && !m.isWritablePrimary) error(`${pair.master.ref} is not the primary of ${m.setName}${m.primary ? ` (the primary is ${m.primary})` : ''}: members are added by a reconfig on the primary; declare the primary as the pair's master`);
  if (major(m.version) !== major(s.version)) error(`${pair.master.ref} runs MongoDB ${m.version} and ${pair.slave.ref} ${s.version}: an initial sync needs the same major version`);
  const entry = m.setName ? configEntry(m, pair.slave, s) : undefined;
  if (!entry && s.setName) error(`${pair.slave.ref} is a member of replica set ${s.setName}${s.primary ? ` (primary ${s.primary})` : ''}: remove it there first`);
  const voters = votersAfter(m, pair, s, entry ? entry.votes : 1);
  if (voters > 7) error(`replica set ${set} would have ${voters} voting members; MongoDB allows at most 7: add the slave as a non-voting member by hand, or remove a vote first`);
  // Every reconfig needs a majority of the voters to answer.
  if (m.setName) {
    const voting = m.configMembers.filter((c) => c.votes > 0);
    const up = voting.filter((c) => m.members.find((x) => x.name === c.host)?.health === 1);
    if (up.length < Math.floor(voting.length / 2) + 1) error(`only ${up.length} of ${voting.length} voting members of ${m.setName} are up (${up.map((c) => c.host).join(', ')}): a reconfig needs a majority; bring them back first`);
  }
  if (!m.setName) {
    const host = await hostOrError(session, pair.master, error);
    if (host) {
      out.push(...(await finding('error', () => checkHostCanWork(host, pair.master))));
      out.push(...(await finding('error', () => verifyHost(host, pair.master, m))));
      out.push(...(await finding('error', () => checkOptions(host, pair.master, m))));
    }
  }
  await slaveChecks(pair, s, session, error, true, m.dataBytes);
  out.push(...(await finding('error', () => checkInternalAuth(pair, m, s, session))));
  return out;
}

/**
 * Members of a set with access control authenticate to each other with a key file
 * (security.keyFile), which dbrepl does not write: a master that enforces authorization but
 * has none cannot become a set, and a slave without the master's cannot join it.
 */
async function checkInternalAuth(pair: Pair, m: MongoFacts, s: MongoFacts, session: Session): Promise<void> {
  const security = async (server: Server, f: MongoFacts): Promise<{ keyFile?: string; authorization?: string }> => {
    const text = await readOptions(await session.hosts.forServer(server), server, f);
    return ((YAML.parse(text) as { security?: { keyFile?: string; authorization?: string } } | null)?.security ?? {});
  };
  const [ms, ss] = [await security(pair.master, m), await security(pair.slave, s)];
  if (ms.authorization === 'enabled' && !ms.keyFile) {
    throw new DbreplError('STEP', `${pair.master.ref} enforces authorization without security.keyFile: replica-set members authenticate to each other with a key file; give both servers the same security.keyFile first`);
  }
  if (ms.keyFile && !ss.keyFile) {
    throw new DbreplError('STEP', `${pair.master.ref} has security.keyFile and ${pair.slave.ref} has none: it could not authenticate to the set; give it the same key file first`);
  }
}

async function slaveChecks(pair: Pair, s: MongoFacts, session: Session, error: (m: string) => void, rebuild: boolean, needBytes = 0): Promise<void> {
  const host = await hostOrError(session, pair.slave, error);
  if (!host) return;
  const push = async (check: () => Promise<unknown>): Promise<void> => {
    for (const f of await finding('error', check)) error(f.message);
  };
  await push(() => checkHostCanWork(host, pair.slave));
  await push(() => verifyHost(host, pair.slave, s));
  await push(() => checkOptions(host, pair.slave, s));
  if (!rebuild) return;
  if (pair.slave.dataDir && pair.slave.dataDir.replace(/\/+$/, '') !== s.dbPath.replace(/\/+$/, '')) {
    error(`${pair.slave.ref} has data_dir ${pair.slave.dataDir} but runs on ${s.dbPath} (storage.dbPath): fix data_dir`);
  }
  await push(() => checkFreeSpace(host, dataDirOf(pair.slave, s), needBytes, pair.master.ref));
}

/** options_file must be the configuration file the server was started with, readable as its user. */
async function checkOptions(host: Host, server: Server, f: MongoFacts): Promise<void> {
  const file = optionsFile(server, f);
  if (f.configFile && file !== f.configFile) {
    throw new DbreplError('STEP', `options_file of ${server.ref} is ${file} but its mongod reads ${f.configFile} (--config): mongod has no include, so options_file must be that file`);
  }
  await readOptions(host, server, f);
  if (f.replSetFromArgv) {
    throw new DbreplError('STEP', `${server.ref} was started with --replSet on its command line: dbrepl sets and removes replication.replSetName only in ${file}; move it there (and out of the service's command line) first`);
  }
}
