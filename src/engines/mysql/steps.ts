import { DbreplError, messageOf } from '../../errors';
import { readFile, runChecked, statOwner } from '../../hosts/commands';
import type { Host, RunAs } from '../../hosts/host';
import { copyTimeoutMs, SERVICE_TIMEOUT_MS } from '../../hosts/limits';
import type { Pair, Server } from '../../model';
import { pollUntil, PollAbort } from '../../util/poll';
import { CopyProgress } from '../../util/progress';
import { stepState } from '../engine';
import { oneWriterStep } from '../fence';
import type { ActionPlan, ChangeAction, Session, Sides, Step } from '../engine';
import { serviceArgv } from '../service';
import { dataBytes, withClient, Sql } from './client';
import { Dialect, dialectFor, nativePasswordHash, renderStatement } from './dialect';
import { checkLoginFromHost, dumpToFile, Login, ownDumpArgs, restoreFromFile, streamCopy } from './host-side';
import { forgetTlsSteps, removeTlsFiles, replicationTls, TlsFiles, tlsFileList, tlsFilesFor, writeTlsFiles } from '../tls';
import { MyFacts, readFacts } from './inspect';
import { optionsFile, restoreOptions, verifyServerReads, writeOptions } from './options';
import { preservedPath, serverIdFor } from './state';
import { copyChoice, discardOldStep, PhysicalState, physicalSteps } from './physical';

const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];
const CATCHUP_AFTER_COPY_S = 300;

export function service(server: Server, d: Dialect): { stop: string; start: string } {
  const unit = d.version.flavour === 'mariadb' ? 'mariadb' : 'mysql';
  return server.service ?? { stop: `systemctl stop ${unit}`, start: `systemctl start ${unit}` };
}

export function plan(pair: Pair, action: ChangeAction, sides: Sides<MyFacts>, stamp: string, state?: Record<string, unknown>): ActionPlan {
  return action === 'disable' ? disableSteps(pair, sides, state) : enableSteps(pair, sides, stamp, state);
}

/**
 * The slave's admin account as it is now (with its password hash), to be put back after
 * the copy: the copy brings the master's `mysql` schema (its users and grants, so that
 * accounts replicated later apply cleanly), and the slave must stay manageable with the
 * credentials in the file.
 */
export async function adminAccount(sql: Sql, d: Dialect): Promise<string> {
  // MySQL's caching_sha2_password hashes hold raw bytes: have them printed as hex so they replay.
  if (d.version.flavour === 'mysql') await sql.query('SET SESSION print_identified_with_as_hex = ON');
  const [created] = await sql.query('SHOW CREATE USER CURRENT_USER()');
  const create = String(Object.values(created!)[0]);
  const account = /^CREATE USER ((?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|[^\s@]+)@(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|\S+))/.exec(create)?.[1];
  if (!account) throw new DbreplError('STEP', 'cannot read the admin account of the slave (SHOW CREATE USER)');
  const grants = (await sql.query('SHOW GRANTS FOR CURRENT_USER()')).map((r) => String(Object.values(r)[0]));
  return ['SET SESSION sql_log_bin=0;', `DROP USER IF EXISTS ${account};`, `${create};`, ...grants.map((g) => `${g};`), 'FLUSH PRIVILEGES;'].join('\n');
}

async function dropUserSchemas(sql: Sql): Promise<void> {
  await sql.query('SET SESSION sql_log_bin = 0');
  const rows = await sql.query('SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA');
  for (const r of rows) {
    const schema = String(r.s);
    if (!SYSTEM_SCHEMAS.includes(schema.toLowerCase())) await sql.query(`DROP DATABASE \`${schema.replace(/`/g, '``')}\``);
  }
}

/** The owner of the directory a file goes to, when that is not root: files are made by whoever owns the place. */
async function dirOwner(host: Host, file: string): Promise<RunAs | undefined> {
  const o = await statOwner(host, file.replace(/\/[^/]*$/, '') || '/');
  return o.uid === 0 ? undefined : { uid: o.uid, gid: o.gid };
}

/**
 * Enable and resync: the master (binary log, replication user), then the slave: read-only,
 * its data dumped to the preserved file, emptied, filled with an online copy of the
 * master streamed on its own host, pointed at the master by GTID. Each step that changes
 * the slave says how it is undone: the dump is loaded back, the settings put back.
 */
function enableSteps(pair: Pair, { m, s }: Sides<MyFacts>, stamp: string, state?: Record<string, unknown>): ActionPlan {
  const d = dialectFor(s.version);
  const md = dialectFor(m.version);
  const mariadb = d.version.flavour === 'mariadb';
  const user = pair.replication.user ?? '';
  const password = pair.replication.password ?? '';
  const preserved = preservedPath(s.datadir, stamp);
  const serverId = s.serverId === 0 || s.serverId === m.serverId ? serverIdFor(pair.slave, [m.serverId, 0]) : s.serverId;
  // TLS: the master's files on the slave's host serve the copy and the replication channel; the
  // slave's own files serve the programs that load into it.
  const masterTls = replicationTls(pair.master);
  const masterFiles = masterTls === 'none' ? null : tlsFilesFor(s.datadir, pair.master);
  const slaveTls = replicationTls(pair.slave);
  const slaveFiles = slaveTls === 'none' ? null : tlsFilesFor(s.datadir, pair.slave);
  const paths = (files: TlsFiles | null, mode: string) => (files ? { verify: mode === 'verify-full', ca: files.ca, cert: files.cert, key: files.key } : undefined);
  const login = (server: Server, dialect: Dialect, files: TlsFiles | null, mode: string): Login => ({ server, tls: files ? dialect.clientTls(paths(files, mode)!) : [] });
  const replUser = [
    ...md.replicationUser(user, pair.slave.host, mariadb ? nativePasswordHash(password) : password),
    // The master refuses this login without TLS: the channel cannot fall back to plain text.
    ...(masterTls === 'none' ? [] : [{ sql: 'ALTER USER ?@? REQUIRE SSL', values: [user, pair.slave.host] }]),
  ];
  const change = d.changeSource({ host: pair.master.host, port: pair.master.port, user, password, tls: paths(masterFiles, masterTls) });
  const slaveSettings: Record<string, number> = { server_id: serverId, read_only: 1 };
  // Journalled (the trailer holds the slave's admin account as SHOW CREATE USER gives it: a hash, on the slave's own host).
  const st = stepState(state, {
    trailer: '',
    optionsBefore: undefined as string | null | undefined,
    settingsTouched: false,
    emptied: false,
    ownBytes: 0,
    tlsCreated: [] as string[],
    physical: { stageMade: false, bytes: 0, gtid: '', optionsBeforeInit: undefined, initWritten: false, inode: '', swapping: false, discarding: false } as PhysicalState,
  });
  const slaveHost = (session: Session): Promise<Host> => session.hosts.forServer(pair.slave);
  const slaveSql = <T>(session: Session, fn: (sql: Sql) => Promise<T>): Promise<T> => withClient(session, pair.slave, fn);
  const steps: Step[] = [];

  if (mariadb && !m.logBin) {
    const settings = { log_bin: 'mysql-bin', binlog_format: 'ROW', server_id: m.serverId === 0 ? serverIdFor(pair.master, [0]) : m.serverId };
    const svc = service(pair.master, md);
    steps.push({
      id: 'master-binlog',
      side: 'master',
      title: 'turn on binary logging and restart',
      text: `master: binary logging is off: write ${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join(', ')} into ${optionsFile(pair.master)} (checked to be read by the server), then restart the master (${svc.stop}; ${svc.start})`,
      run: async (session) => {
        const host = await session.hosts.forServer(pair.master);
        await writeOptions(host, pair.master, m, settings);
        await verifyServerReads(host, pair.master, m, settings);
        await runChecked(host, serviceArgv(svc.stop), `stop command of ${pair.master.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
        await runChecked(host, serviceArgv(svc.start), `start command of ${pair.master.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
        await pollUntil(`${pair.master.ref} to come back with binary logging on`, 180_000, () =>
          withClient(session, pair.master, async (sql) => ((await readFacts(sql)).logBin ? true : undefined)),
        );
      },
      // A run stopped between the stop and the start leaves the master down: whoever rolls back starts it.
      undo: {
        text: 'start the master again if it is down (binary logging stays on)',
        run: async (session) => {
          if (await withClient(session, pair.master, async () => true).catch(() => false)) return '';
          const host = await session.hosts.forServer(pair.master);
          await runChecked(host, serviceArgv(svc.start), `start command of ${pair.master.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
          await pollUntil(`${pair.master.ref} to come back`, 180_000, () => withClient(session, pair.master, async () => true));
          return `${pair.master.ref} was started again`;
        },
      },
    });
  }
  steps.push({
    id: 'replication-user',
    side: 'master',
    title: 'ensure the replication user',
    text: `master: ${replUser.map((q) => renderStatement(q.sql, q.values, q.values.length > 2 ? [2] : [])).join('; ')}`,
    run: (session) =>
      withClient(session, pair.master, async (sql) => {
        for (const q of replUser) await sql.query(q.sql, q.values);
      }),
  });
  if (masterFiles || slaveFiles) {
    steps.push({
      id: 'tls-files',
      side: 'slave host',
      title: 'write the TLS files',
      text: `slave host: write ${[masterFiles, slaveFiles].flatMap((f) => (f ? [f.ca, f.cert, f.key] : [])).filter(Boolean).join(', ')} (CA and client certificates, readable by the slave's server only)`,
      run: async (session) => {
        const host = await slaveHost(session);
        const owner = await statOwner(host, s.datadir);
        if (masterFiles) st.tlsCreated.push(...(await writeTlsFiles(host, masterFiles, pair.master, owner)));
        if (slaveFiles) st.tlsCreated.push(...(await writeTlsFiles(host, slaveFiles, pair.slave, owner)));
        await session.checkpoint?.();
      },
      undo: {
        text: 'remove the TLS files this run wrote',
        run: async (session) => {
          // A physical copy that had caught up is kept, and its replication channel uses these files.
          if (st.physical.discarding) return '';
          await removeTlsFiles(await slaveHost(session), st.tlsCreated);
          return '';
        },
      },
    });
  }
  steps.push({
    id: 'replication-login',
    side: 'slave host',
    title: 'log in to the master as the replication user',
    text: `slave host: ${d.clientProgram} -e "SELECT 1" to ${pair.master.host}:${pair.master.port} as ${user} (the login the slave will use)`,
    run: async (session) => checkLoginFromHost(await slaveHost(session), d, login(pair.master, d, masterFiles, masterTls), user, password),
  });
  steps.push({
    id: 'admin-account',
    side: 'slave',
    title: 'read its admin account',
    text: 'slave: SHOW CREATE USER CURRENT_USER(); SHOW GRANTS (its admin account, put back after the copy)',
    run: async (session) => {
      st.trailer = await slaveSql(session, (sql) => adminAccount(sql, d));
      await session.checkpoint?.();
    },
  });
  steps.push({
    id: 'settings',
    side: 'slave',
    title: 'server_id and read_only',
    text: `slave: ${serverId !== s.serverId ? `${renderStatement(d.setServerId, [serverId])}; ` : ''}${d.readOnly(true).join('; ')}${
      d.needsOptionsFile ? `; server_id = ${serverId} and read_only = 1 persisted in ${optionsFile(pair.slave)} (owner of ${s.datadir}, mode 644), checked to be what the server reads at its next start` : ''
    }`,
    run: async (session) => {
      if (d.needsOptionsFile) st.optionsBefore = await readFile(await slaveHost(session), optionsFile(pair.slave));
      st.settingsTouched = true;
      await session.checkpoint?.();
      await slaveSql(session, async (sql) => {
        if (serverId !== s.serverId) await sql.query(d.setServerId, [serverId]);
        for (const q of d.readOnly(true)) await sql.query(q);
      });
      if (d.needsOptionsFile) {
        const host = await slaveHost(session);
        await writeOptions(host, pair.slave, s, slaveSettings);
        await verifyServerReads(host, pair.slave, s, slaveSettings);
      }
    },
    undo: {
      text: 'put server_id, read_only and the option file back as they were',
      run: async (session) => {
        if (!st.settingsTouched) return '';
        // A physical copy that had caught up is kept (its old data directory was going): its settings stay too.
        if (st.physical.discarding) return '';
        const failed: string[] = [];
        // Each part on its own: one failing must not keep the others from running.
        await slaveSql(session, async (sql) => {
          if (s.serverId !== 0 && serverId !== s.serverId) await sql.query(d.setServerId, [s.serverId]).catch((e: unknown) => failed.push(`server_id: ${messageOf(e)}`));
          for (const q of d.readOnly(s.readOnly)) await sql.query(q).catch((e: unknown) => failed.push(`read_only: ${messageOf(e)}`));
          if (s.superReadOnly && d.superReadOnly) await sql.query(d.superReadOnly).catch((e: unknown) => failed.push(`super_read_only: ${messageOf(e)}`));
        }).catch((e: unknown) => failed.push(messageOf(e)));
        if (d.needsOptionsFile && st.optionsBefore !== undefined) {
          await restoreOptions(await slaveHost(session), pair.slave, s, st.optionsBefore).catch((e: unknown) => failed.push(`${optionsFile(pair.slave)}: ${messageOf(e)}`));
        }
        if (failed.length > 0) throw new DbreplError('STEP', `putting the slave's settings back failed (${failed.join('; ')})`);
        return `its read_only${d.superReadOnly ? ', super_read_only' : ''}${d.needsOptionsFile ? `, server_id and ${optionsFile(pair.slave)}` : ' and server_id'} are as before`;
      },
    },
  });
  const choice = copyChoice(pair, m, s);
  const physical = choice.method === 'physical';
  // The physical copy keeps the old data directory until the slave caught up (its undo puts it
  // back): the slave's data is dumped only when it has databases of its own. The logical copy's
  // undo loads the dump back (its accounts too), so it always dumps.
  const dumpOwn = !physical || s.userSchemas > 0;
  if (dumpOwn) {
    steps.push({
      id: 'dump-own',
      side: 'slave host',
      title: 'dump its current data (kept)',
      text: `slave host: ${d.dumpProgram} ${ownDumpArgs(d).join(' ')} | gzip -1 > ${preserved} (the slave's current data, kept)`,
      run: async (session) => {
        const host = await slaveHost(session);
        st.ownBytes = await dataBytes(session, pair.slave);
        await session.checkpoint?.();
        await dumpToFile(host, d, login(pair.slave, d, slaveFiles, slaveTls), preserved, copyTimeoutMs(st.ownBytes, pair.copyTimeoutSeconds), await dirOwner(host, preserved));
      },
    });
  }
  if (physical) {
    const masterLogin = login(pair.master, md, masterFiles, masterTls);
    steps.push(...physicalSteps(pair, m, s, d, stamp, st.physical, () => st.trailer, change, renderStatement(change.sql, change.values, [3]), masterLogin.tls, service(pair.slave, d)));
  } else {
    const reset = [d.stopReplica, d.resetReplicaAll];
    steps.push({
      id: 'empty',
      side: 'slave',
      title: s.logBin ? 'reset replication, drop its databases, reset its binary logs' : 'reset replication, drop its databases',
      text: `slave: ${reset.join('; ')}; DROP DATABASE for each database of its own (all are in ${preserved})${
        s.logBin ? `; ${d.resetBinlogs}` : '; its binary logging is off, so no binary logs are reset'
      }`,
      run: (session) =>
        slaveSql(session, async (sql) => {
          st.emptied = true;
          await session.checkpoint?.();
          for (const q of reset) await sql.query(q);
          await dropUserSchemas(sql);
          if (s.logBin) await sql.query(d.resetBinlogs);
        }),
      undo: {
        text: `load ${preserved} back`,
        run: async (session) => {
          if (!st.emptied) return '';
          // Nothing of the copy may remain, and nothing here depends on the statement that
          // failed: each tidying statement on its own; the load goes ahead even if a database
          // cannot be dropped (the dump recreates every table it holds). read_only stays on
          // until the settings' own undo puts it back as it was.
          const notes: string[] = [];
          await slaveSql(session, async (sql) => {
            for (const q of [d.stopReplica, d.resetReplicaAll, ...(d.superReadOnly ? ['SET PERSIST super_read_only = OFF'] : [])]) await sql.query(q).catch(() => undefined);
            await dropUserSchemas(sql).catch((e: unknown) => notes.push(`not every database of the copy could be dropped (${messageOf(e)}): tables of the copy may remain next to the restored ones`));
            if (s.gtidSlavePos !== null) await sql.query('SET GLOBAL gtid_slave_pos = ?', [s.gtidSlavePos]).catch(() => undefined);
          }).catch((e: unknown) => notes.push(`tidying before the load failed (${messageOf(e)})`));
          // The bound of the load is not the pair's copy_timeout: a rollback is not cut short.
          await restoreFromFile(await slaveHost(session), d, login(pair.slave, d, slaveFiles, slaveTls), preserved, st.trailer, copyTimeoutMs(st.ownBytes));
          const gone = s.replica ? `; its replication settings (it followed ${s.replica.sourceHost}:${s.replica.sourcePort}) were reset and are not restored` : '';
          return [`the slave was restored from its dump ${preserved}${gone}`, ...notes].join('; ');
        },
      },
    });
    steps.push({
      id: 'copy',
      side: 'slave host',
      title: 'stream the master into the slave',
      text: `slave host: ${md.dumpProgram} ${md.dumpArgs.join(' ')} on the master, piped straight into ${d.clientProgram} on the slave with sql_log_bin=0 (logical copy, full and online: ${choice.method === 'logical' ? choice.why : ''}; the slave's admin account is put back at the end)`,
      run: async (session) => {
        const bytes = await dataBytes(session, pair.master);
        // The dump's size is not the data's: the total is an estimate.
        const meter = new CopyProgress(`${pair.name}: copy`, (l) => session.log.info(l), { total: bytes, estimated: true, everyMs: session.progressEveryMs });
        await streamCopy(await slaveHost(session), d, md, login(pair.master, md, masterFiles, masterTls), login(pair.slave, d, slaveFiles, slaveTls), st.trailer, copyTimeoutMs(bytes, pair.copyTimeoutSeconds), meter);
      },
    });
    const follow = [...(d.superReadOnly ? [d.superReadOnly] : []), change.sql, d.startReplica];
    steps.push({
      id: 'follow',
      side: 'slave',
      title: 'keep copied events from running, read-only for every account, follow the master by GTID',
      text: `slave: ALTER EVENT ... ${d.disableEventOnReplica} for every enabled event; ${[...(d.superReadOnly ? [d.superReadOnly] : []), renderStatement(change.sql, change.values, [3]), d.startReplica].join('; ')}${
        masterTls === 'none' ? '' : ` (replication over TLS, ${masterTls})`
      }`,
      run: (session) =>
        slaveSql(session, async (sql) => {
          await sql.query('SET SESSION sql_log_bin = 0');
          const events = await sql.query(`SELECT EVENT_SCHEMA AS s, EVENT_NAME AS n FROM information_schema.EVENTS WHERE STATUS = 'ENABLED'`);
          for (const e of events) await sql.query(`ALTER EVENT \`${String(e.s).replace(/`/g, '``')}\`.\`${String(e.n).replace(/`/g, '``')}\` ${d.disableEventOnReplica}`);
          for (const q of follow) await sql.query(q, q === change.sql ? change.values : undefined);
        }),
    });
  }
  steps.push({
    id: 'caught-up',
    side: 'slave',
    title: 'wait until it runs and has caught up',
    text: `slave: wait until both replication threads run, then ${renderStatement(d.waitForGtids, ["<master's executed GTIDs>", CATCHUP_AFTER_COPY_S])}`,
    run: (session) => waitCaughtUp(session, pair, d, md),
  });

  if (slaveFiles) {
    // The slave's own client certificate served the programs of the copy only.
    steps.push({
      id: 'forget-own-tls',
      side: 'slave host',
      title: 'remove the TLS files the copy used',
      text: `slave host: remove ${tlsFileList(slaveFiles).join(', ')} (used by the copy programs only)`,
      run: async (session) => removeTlsFiles(await slaveHost(session), tlsFileList(slaveFiles)),
    });
  }
  if (physical) steps.push(discardOldStep(pair, s, stamp, dumpOwn ? preserved : null, st.physical));
  const warnings: string[] = [];
  let disruption = physical
    ? 'slave is rebuilt: a physical copy of the master is prepared next to it while it serves, then it restarts onto it (a short outage of the slave); master keeps serving'
    : 'slave is rebuilt: its data is replaced by a copy of the master (reads of it see the copy fill in); master keeps serving';
  disruption += md.version.flavour === 'mysql' ? ', with a global read lock for a moment when the dump starts' : '';
  if (mariadb && !m.logBin) {
    warnings.push(`the master ${pair.master.ref} must restart to turn on binary logging`);
    disruption = `master restarts (brief outage); ${disruption}`;
  }
  return { steps, disruption, preserved: dumpOwn ? preserved : null, lockDir: s.datadir, warnings };
}

async function waitCaughtUp(session: Session, pair: Pair, d: Dialect, md: Dialect): Promise<void> {
  await pollUntil(`both replication threads of ${pair.slave.ref} to run`, 120_000, () =>
    withClient(session, pair.slave, async (sql) => {
      const r = (await readFacts(sql)).replica;
      // An SQL error will not go away by waiting.
      if (r?.lastSqlErrno) throw new PollAbort(`the slave stopped on error ${r.lastSqlErrno}: ${r.lastSqlError}`);
      if (r && r.ioRunning === 'Yes' && r.sqlRunning === 'Yes' && r.secondsBehind !== null) return true;
      if (r?.lastIoErrno) throw new Error(`IO error ${r.lastIoErrno}: ${r.lastIoError}`);
      return undefined;
    }),
  );
  const target = await withClient(session, pair.master, async (sql) => String((await sql.query(`SELECT ${md.executedGtids} AS g`))[0]!.g).replace(/\s+/g, ''));
  const done = await withClient(session, pair.slave, async (sql) => Number((await sql.query(d.waitForGtids, [target, CATCHUP_AFTER_COPY_S], (CATCHUP_AFTER_COPY_S + 30) * 1000))[0]!.r));
  if (done !== 0) throw new DbreplError('STEP', `the slave did not execute the master's GTIDs ${target} within ${CATCHUP_AFTER_COPY_S}s`);
}

/** Disable: catch up by GTID, stop and reset replication completely, writable again (and after a restart too). */
function disableSteps(pair: Pair, { m, s }: Sides<MyFacts>, state?: Record<string, unknown>): ActionPlan {
  // A master that cannot be reached (a forced disable): no catch-up; the slave is detached as it is.
  const masterless = !m;
  // detaching: the point of no return (journalled before RESET REPLICA ALL): from then on the fence stays.
  const st = stepState(state, { detaching: false, fenced: false, optionsSaved: false, optionsBefore: null as string | null });
  const d = dialectFor(s.version);
  const md = dialectFor((m ?? s).version);
  let target = '';
  const detach = [d.stopReplica, d.resetReplicaAll, ...d.readOnly(false)];
  const fence = pair.fence && m ? fenceSteps(pair, m, st) : { before: [], after: [] };
  const all: Step[] = [
    ...fence.before,
    {
      id: 'note-gtids',
      side: 'master',
      title: 'note its executed GTIDs',
      text: `master: note its executed GTIDs (${md.executedGtids})`,
      run: async (session) => {
        target = await withClient(session, pair.master, async (sql) => String((await sql.query(`SELECT ${md.executedGtids} AS g`))[0]!.g).replace(/\s+/g, ''));
      },
    },
    {
      id: 'catch-up',
      side: 'slave',
      title: 'wait until it has executed them',
      text: `slave: ${renderStatement(d.waitForGtids, ['<those GTIDs>', pair.catchupTimeoutSeconds])} (at most ${pair.catchupTimeoutSeconds}s)`,
      run: (session) =>
        withClient(session, pair.slave, async (sql) => {
          const r = Number((await sql.query(d.waitForGtids, [target, pair.catchupTimeoutSeconds], (pair.catchupTimeoutSeconds + 30) * 1000))[0]!.r);
          if (r !== 0) {
            const now = String((await sql.query(`SELECT ${d.executedGtids} AS g`))[0]!.g);
            throw new DbreplError('STEP', `the slave did not reach the master's GTIDs ${target} within ${pair.catchupTimeoutSeconds}s (it is at ${now}); nothing was changed (raise catchup_timeout or repair the link, then apply again)`);
          }
        }),
    },
    {
      id: 'detach',
      side: 'slave',
      title: 'stop and reset replication, make it writable',
      text: `slave: ${detach.join('; ')}`,
      run: async (session) => {
        st.detaching = true;
        await session.checkpoint?.();
        await withClient(session, pair.slave, async (sql) => {
          for (const q of detach) await sql.query(q);
        });
      },
      // Past the point of no return there is nothing to put back: a slave whose replication was
      // reset is finished instead (writable), so no run leaves it read-only with no master.
      undo: {
        text: 'if its replication was reset: make it writable (finish the detach)',
        run: (session) =>
          withClient(session, pair.slave, async (sql) => {
            if ((await sql.query(d.replicaStatus)).length > 0) return '';
            for (const q of d.readOnly(false)) await sql.query(q);
            return `${pair.slave.ref}'s replication had been reset: it was made writable (the detach finished)`;
          }),
      },
    },
  ];
  const steps = masterless ? all.filter((x) => !x.side.startsWith('master') && x.id !== 'catch-up') : all;
  if (d.needsOptionsFile) {
    steps.push({
      id: 'persist-writable',
      side: 'slave',
      title: 'persist read_only = 0',
      text: `slave: read_only = 0 in ${optionsFile(pair.slave)}, checked to be what the server reads at its next start`,
      run: async (session) => {
        const host = await session.hosts.forServer(pair.slave);
        await writeOptions(host, pair.slave, s, { read_only: 0 });
        await verifyServerReads(host, pair.slave, s, { read_only: 0 });
      },
    });
  }
  steps.push(...fence.after);
  steps.push(...forgetTlsSteps(pair, s.datadir));
  return {
    steps,
    disruption: pair.fence && !masterless ? 'master becomes read-only (persisted); slave becomes the standalone writable server' : 'slave becomes a standalone writable server; master keeps serving',
    preserved: null,
    lockDir: null,
    warnings: masterless ? [`${pair.master.ref} cannot be reached: the slave is detached without catching up`] : [],
  };
}

/**
 * fence: true: before the catch-up, the master is made read-only, in memory and for its next
 * start (its option file, or SET PERSIST): the GTIDs the slave then executes are everything the
 * master will take. After the slave is detached, one writer is checked. The undo makes the master
 * writable again (and puts its option file back) only if this step fenced it and the detach never
 * began (the journal says so, not the slave, which may not answer); after that, a read-only
 * master is the point. A master already read-only (a cascading one) is left as it is.
 */
function fenceSteps(pair: Pair, m: MyFacts, st: { detaching: boolean; fenced: boolean; optionsSaved: boolean; optionsBefore: string | null }): { before: Step[]; after: Step[] } {
  const md = dialectFor(m.version);
  const on = [...md.readOnly(true), ...(md.superReadOnly ? [md.superReadOnly] : [])];
  const readOnly = (session: Session, server: Server): Promise<boolean> =>
    withClient(session, server, async (sql) => Number((await sql.query('SELECT @@global.read_only AS ro'))[0]!.ro) === 1);
  return {
    before: [
      {
        id: 'fence',
        side: 'master',
        title: 'make the master read-only',
        text: `master: ${on.join('; ')} (waiting at most ${FENCE_LOCK_WAIT}s for running writes)${md.needsOptionsFile ? `; read_only = 1 persisted in ${optionsFile(pair.master)}, checked to be what the server reads at its next start` : ''}`,
        run: async (session) => {
          if (await readOnly(session, pair.master)) return;
          const host = md.needsOptionsFile ? await session.hosts.forServer(pair.master) : null;
          if (host && !st.optionsSaved) {
            st.optionsBefore = await readFile(host, optionsFile(pair.master));
            st.optionsSaved = true;
          }
          st.fenced = true;
          await session.checkpoint?.();
          await withClient(session, pair.master, async (sql) => {
            // read_only waits for running writes (and their locks): not for long, writers queue behind it.
            await sql.query(`SET SESSION lock_wait_timeout = ${FENCE_LOCK_WAIT}`);
            for (const q of on) await sql.query(q);
          });
          if (host) {
            await writeOptions(host, pair.master, m, { read_only: 1 });
            await verifyServerReads(host, pair.master, m, { read_only: 1 });
          }
        },
        undo: {
          text: 'make the master writable again (and its option file as it was), unless the detach had begun',
          run: async (session) => {
            if (st.detaching) return `${pair.master.ref} stays read-only: the detach of ${pair.slave.ref} had begun, and one writer is what the fence is for`;
            if (!st.fenced) return '';
            await withClient(session, pair.master, async (sql) => {
              for (const q of md.readOnly(false)) await sql.query(q);
            });
            if (st.optionsSaved) await restoreOptions(await session.hosts.forServer(pair.master), pair.master, m, st.optionsBefore);
            st.fenced = false;
            return `${pair.master.ref} is writable again`;
          },
        },
      },
    ],
    after: [oneWriterStep(pair, readOnly, 'it was detached')],
  };
}

/** Seconds the fence's read_only waits for running writes before it fails (and is undone). */
const FENCE_LOCK_WAIT = 10;
