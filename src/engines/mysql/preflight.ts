import { messageOf } from '../../errors';
import type { Host } from '../../hosts/host';
import { checkFreeSpace } from '../../hosts/rebuild';
import type { Pair } from '../../model';
import { checkHostCanWork, finding, Finding, hostOrError, Session, sharedMachine, Sides } from '../engine';
import type { ActionPlan, ChangeAction } from '../engine';
import { withClient } from './client';
import { dialectFor } from './dialect';
import { checkPrograms, verifyHost } from './host-side';
import type { MyFacts } from './inspect';
import { checkOptionsFile, optionsAsServerReads, optionsFile } from './options';
import { blockers } from './state';
import { replicationTls } from '../tls';
import { adminAccount, dataBytes, service } from './steps';

/**
 * Every check that changes nothing, with the servers and hosts it needs: run by plan, and
 * again by apply after its lock, before the first change. For a pair with nothing to do,
 * a MariaDB slave's settings are checked to survive a restart.
 */
export async function preflight(pair: Pair, { m, s }: Sides<MyFacts>, planned: { action: ChangeAction; plan: ActionPlan } | null, session: Session): Promise<Finding[]> {
  const d = dialectFor(s.version);
  const md = dialectFor(m.version);
  const mariadb = d.version.flavour === 'mariadb';
  if (!planned) return pair.desired === 'enabled' && mariadb && s.replica ? survivesRestart(pair, s, session) : [];

  const out: Finding[] = [];
  const error = (message: string): void => void out.push({ level: 'error', message });
  const slaveHost = await hostOrError(session, pair.slave, error);

  if (planned.action === 'disable') {
    if (d.needsOptionsFile && slaveHost) {
      out.push(...(await finding('error', () => verifyHost(slaveHost, pair.slave, s))));
      out.push(...(await finding('error', () => checkOptionsFile(slaveHost, pair.slave, s))));
    }
    return out;
  }

  for (const b of blockers(m, s)) error(b);
  if (replicationTls(pair.master) === 'verify-full' && !pair.master.tls?.ca) {
    error(`replication from ${pair.master.ref} with tls verify-full needs tls.ca: the slave's server and the copy programs verify the master's certificate against a CA file`);
  }
  if (s.dumpClients.length > 0) {
    error(`${pair.slave.ref} is serving ${s.dumpClients.length} replica connection(s) of its own (${s.dumpClients.join(', ')}); refusing to overwrite a master — fix the file or stop those replicas first`);
  }
  if (md.version.flavour === 'mysql') {
    // mysqldump --source-data takes FLUSH TABLES WITH READ LOCK: behind a long query it would
    // hold off every write on the master until that query ends.
    out.push(...(await finding('error', () => noLongQueries(session, pair))));
  }
  // Put back after the copy: it must be readable now, not after the slave was emptied.
  out.push(...(await finding('error', () => withClient(session, pair.slave, (sql) => adminAccount(sql, d)))));
  if (slaveHost) {
    // The kept dump, the copy and the option file belong on the slave's own machine.
    out.push(...(await finding('error', () => verifyHost(slaveHost, pair.slave, s))));
    out.push(...(await finding('error', () => checkPrograms(slaveHost, [d.dumpProgram, d.clientProgram, md.dumpProgram, 'gzip', 'dd']))));
    if (d.needsOptionsFile) out.push(...(await finding('error', () => checkOptionsFile(slaveHost, pair.slave, s))));
    out.push(...(await finding('error', async () => checkFreeSpace(slaveHost, s.datadir, await dataBytes(session, pair.master), pair.master.ref))));
  }
  if (mariadb && !m.logBin) {
    const masterHost = await hostOrError(session, pair.master, error);
    if (masterHost) {
      out.push(...(await finding('error', () => checkHostCanWork(masterHost, pair.master))));
      out.push(...(await finding('error', () => verifyHost(masterHost, pair.master, m))));
      out.push(...(await finding('error', () => checkOptionsFile(masterHost, pair.master, m))));
      if (!pair.master.service && slaveHost && (await sharedMachine(slaveHost, masterHost))) {
        error(`${pair.master.ref} must restart and has no service commands; the default (${service(pair.master, md).stop}) would stop every server of that host, ${pair.slave.ref} included: set service.stop and service.start for ${pair.master.ref}`);
      }
    }
  }
  return out;
}

async function noLongQueries(session: Session, pair: Pair): Promise<void> {
  const [long] = await withClient(session, pair.master, (sql) =>
    sql.query(`SELECT COUNT(*) AS n, COALESCE(MAX(TIME), 0) AS t FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND TIME > 30 AND ID <> CONNECTION_ID()`),
  );
  if (Number(long!.n) > 0) {
    throw new Error(`${pair.master.ref} is running ${long!.n} query(ies) for over 30 s (the longest ${long!.t} s); the dump's global read lock would wait behind them and stall all writes: apply again when they are done`);
  }
}

/**
 * A replicating MariaDB slave whose read_only or server_id lives only in memory comes back
 * writable (or with the master's server_id) after its next restart: say so.
 */
async function survivesRestart(pair: Pair, s: MyFacts, session: Session): Promise<Finding[]> {
  let host: Host;
  try {
    host = await session.hosts.forServer(pair.slave);
    await verifyHost(host, pair.slave, s);
  } catch {
    // Host commands cannot reach it from here: nothing to check, nothing to change.
    return [];
  }
  try {
    const read = await optionsAsServerReads(host, pair.slave, s);
    const lost: string[] = [];
    if (s.readOnly && read.values.get('read_only') !== '1') lost.push('read_only would be off');
    if (read.values.get('server_id') !== String(s.serverId)) lost.push(`server_id would be ${read.values.get('server_id') ?? 'unset (1)'}, not ${s.serverId}`);
    if (lost.length === 0) return [];
    return [{ level: 'warning', message: `after a restart ${pair.slave.ref} ${lost.join(' and ')}: its option files, read as the server's user (uid ${read.uid}), do not carry the settings in force; check that ${optionsFile(pair.slave)} is readable by that user and in a directory its configuration includes, then run resync --pair ${pair.name}` }];
  } catch (err) {
    return [{ level: 'warning', message: `cannot check that ${pair.slave.ref} keeps its settings after a restart: ${messageOf(err)}` }];
  }
}

