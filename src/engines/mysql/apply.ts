import { DbreplError, StepError, messageOf } from '../../errors';
import { Host, pathExists, runChecked } from '../../hosts/host';
import { checkFreeSpace, releaseRebuildLock, takeRebuildLock } from '../../hosts/rebuild';
import type { PlannedPair } from '../../plan/types';
import type { Pair, Server } from '../../topology';
import { pollUntil, PollAbort } from '../../util/poll';
import type { ApplyContext } from '../engine';
import { serviceArgv, step } from '../steps';
import { withClient, Sql } from './client';
import { Dialect, dialectFor, nativePasswordHash } from './dialect';
import { checkLoginFromHost, dumpToFile, restoreFromFile, streamCopy, verifyHost, writeOptions } from './host-side';
import { dialectOf, MyFacts, readFacts } from './inspect';
import { blockers, DEFAULT_OPTIONS_FILE, serverIdFor } from './state';

const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];
const CATCHUP_AFTER_COPY_S = 300;

function service(server: Server, d: Dialect): { stop: string; start: string } {
  const unit = d.version.flavour === 'mariadb' ? 'mariadb' : 'mysql';
  return server.service ?? { stop: `systemctl stop ${unit}`, start: `systemctl start ${unit}` };
}

const optionsFile = (server: Server): string => server.optionsFile ?? DEFAULT_OPTIONS_FILE;

/**
 * The slave's admin account as it is now (with its password hash), to be put back after
 * the copy: the copy brings the master's `mysql` schema (its users and grants, so that
 * accounts replicated later apply cleanly), and the slave must stay manageable with the
 * credentials in the file.
 */
async function adminAccount(sql: Sql, d: Dialect): Promise<string> {
  // MySQL's caching_sha2_password hashes hold raw bytes: have them printed as hex so they replay.
  if (d.version.flavour === 'mysql') await sql.query('SET SESSION print_identified_with_as_hex = ON');
  const [created] = await sql.query('SHOW CREATE USER CURRENT_USER()');
  const create = String(Object.values(created!)[0]);
  const account = /^CREATE USER ((?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|[^\s@]+)@(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*'|\S+))/.exec(create)?.[1];
  if (!account) throw new DbreplError('STEP', 'cannot read the admin account of the slave (SHOW CREATE USER)');
  const grants = (await sql.query('SHOW GRANTS FOR CURRENT_USER()')).map((r) => String(Object.values(r)[0]));
  return ['SET SESSION sql_log_bin=0;', `DROP USER IF EXISTS ${account};`, `${create};`, ...grants.map((g) => `${g};`), 'FLUSH PRIVILEGES;'].join('\n');
}

async function userSchemas(sql: Sql): Promise<string[]> {
  const rows = await sql.query('SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA');
  return rows.map((r) => String(r.s)).filter((s) => !SYSTEM_SCHEMAS.includes(s.toLowerCase()));
}

async function dropUserSchemas(sql: Sql): Promise<void> {
  await sql.query('SET SESSION sql_log_bin = 0');
  for (const schema of await userSchemas(sql)) await sql.query(`DROP DATABASE \`${schema.replace(/`/g, '``')}\``);
}

/**
 * Enable and resync. Every check first; then the master (binary log, replication user),
 * then the slave: read-only, its data dumped to the preserved file, emptied, filled with
 * an online copy of the master streamed on its own host, pointed at the master by GTID.
 * A failure after the slave was emptied loads its own dump back.
 */
export async function enable(pair: Pair, planned: PlannedPair, ctx: ApplyContext): Promise<{ preserved: string | null }> {
  const user = pair.replication.user!;
  const password = pair.replication.password!;
  const masterHost = await ctx.hosts.forServer(pair.master);
  const slaveHost = await ctx.hosts.forServer(pair.slave);
  const preserved = planned.preserved;
  if (!preserved) throw new StepError('preflight', 'the plan names no file for the previous data');

  const [master, slave] = await step(ctx, 'read both servers', () => Promise.all([withClient(pair.master, readFacts), withClient(pair.slave, readFacts)]));
  const d = dialectFor(slave.version);
  const md = dialectFor(master.version);
  const mariadb = d.version.flavour === 'mariadb';
  const trailer = await withClient(pair.slave, (sql) => adminAccount(sql, d));

  await step(ctx, 'preflight: versions, GTID, hosts, disk', async () => {
    const blocked = blockers(master, slave);
    if (blocked.length > 0) throw new DbreplError('STEP', blocked.join('; '));
    if (slave.dumpClients.length > 0) {
      throw new DbreplError('STEP', `${pair.slave.ref} is serving ${slave.dumpClients.length} replica connection(s) of its own (${slave.dumpClients.join(', ')}); refusing to overwrite a master — fix the file or stop those replicas first`);
    }
    if (md.version.flavour === 'mysql') {
      // mysqldump --source-data takes FLUSH TABLES WITH READ LOCK: behind a long query it would
      // hold off every write on the master until that query ends.
      const [long] = await withClient(pair.master, (sql) =>
        sql.query(`SELECT COUNT(*) AS n, COALESCE(MAX(TIME), 0) AS t FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND TIME > 30 AND ID <> CONNECTION_ID()`),
      );
      if (Number(long!.n) > 0) {
        throw new DbreplError('STEP', `${pair.master.ref} is running ${long!.n} query(ies) for over 30 s (the longest ${long!.t} s); the dump's global read lock would wait behind them and stall all writes: apply again when they are done`);
      }
    }
    // The kept dump, the copy and the option file belong on the slave's own machine.
    await verifyHost(slaveHost, pair.slave, slave, slave.hostname);
    if (mariadb && !master.logBin) await verifyHost(masterHost, pair.master, master, master.hostname);
    if (await pathExists(slaveHost, preserved)) throw new DbreplError('STEP', `${preserved} already exists; refusing to overwrite kept data`);
    const need = await withClient(pair.master, async (sql) => {
      const [r] = await sql.query('SELECT COALESCE(SUM(data_length + index_length), 0) AS b FROM information_schema.TABLES');
      return Number(r!.b);
    });
    await checkFreeSpace(slaveHost, slave.datadir, need, pair.master.ref);
  });

  await ctx.withLock(pair.master.ref, async () => {
    if (mariadb && !master.logBin) {
      await step(ctx, 'master: turn on binary logging and restart', () => enableBinlog(pair.master, masterHost, md, master));
    }
    await step(ctx, 'master: ensure the replication user', () =>
      withClient(pair.master, async (sql) => {
        const secret = mariadb ? nativePasswordHash(password) : password;
        for (const s of md.replicationUser(user, pair.slave.host, secret)) await sql.query(s.sql, s.values);
      }),
    );
  });
  await step(ctx, "slave host: log in to the master as the replication user", () => checkLoginFromHost(slaveHost, d, pair.master, user, password));

  const lock = await step(ctx, 'slave: take the rebuild lock', () => takeRebuildLock(slaveHost, pair.slave, slave.datadir, { pair: pair.name, preserved }));
  // The slave's settings as they were, to put back if the rebuild does not go through.
  const putSettingsBack = (): Promise<void> =>
    withClient(pair.slave, async (sql) => {
      if (slave.serverId !== 0) await sql.query(d.setServerId, [slave.serverId]);
      for (const s of d.readOnly(slave.readOnly)) await sql.query(s);
      if (d.needsOptionsFile) await writeOptions(slaveHost, pair.slave, optionsFile(pair.slave), { server_id: slave.serverId, read_only: slave.readOnly ? 1 : 0 });
    });
  const fail = (err: unknown, what: string): StepError =>
    new StepError(err instanceof StepError ? err.step : 'rebuild', `${err instanceof StepError ? messageOf(err.cause ?? err) : messageOf(err)}; ${what}`, { cause: err });
  try {
    try {
      await step(ctx, 'slave: server_id and read_only', () =>
        withClient(pair.slave, async (sql) => {
          const serverId = slave.serverId === 0 || slave.serverId === master.serverId ? serverIdFor(pair.slave, [master.serverId, 0]) : slave.serverId;
          if (serverId !== slave.serverId) await sql.query(d.setServerId, [serverId]);
          for (const s of d.readOnly(true)) await sql.query(s);
          if (d.needsOptionsFile) await writeOptions(slaveHost, pair.slave, optionsFile(pair.slave), { server_id: serverId, read_only: 1 });
        }),
      );
      await step(ctx, 'slave: dump its current data (kept)', () => dumpToFile(slaveHost, d, pair.slave, preserved));
    } catch (err) {
      const what = await putSettingsBack().then(
        () => 'nothing was changed on the slave (its read_only and server_id are as before)',
        (e: unknown) => `putting the slave's read_only/server_id back failed (${messageOf(e)})`,
      );
      throw fail(err, what);
    }
    let emptied = false;
    try {
      await step(ctx, 'slave: reset replication, drop its databases, reset its binary logs', () =>
        withClient(pair.slave, async (sql) => {
          await sql.query(d.stopReplica);
          await sql.query(d.resetReplicaAll);
          emptied = true;
          await dropUserSchemas(sql);
          await sql.query(d.resetBinlogs);
        }),
      );
      await step(ctx, 'slave host: stream the master into the slave', () => streamCopy(slaveHost, md, pair.master, pair.slave, trailer));
      await step(ctx, 'slave: keep copied events from running, read-only for every account, follow the master by GTID', () =>
        withClient(pair.slave, async (sql) => {
          await sql.query('SET SESSION sql_log_bin = 0');
          const events = await sql.query(`SELECT EVENT_SCHEMA AS s, EVENT_NAME AS n FROM information_schema.EVENTS WHERE STATUS = 'ENABLED'`);
          for (const e of events) await sql.query(`ALTER EVENT \`${String(e.s).replace(/`/g, '``')}\`.\`${String(e.n).replace(/`/g, '``')}\` ${d.disableEventOnReplica}`);
          if (d.superReadOnly) await sql.query(d.superReadOnly);
          const change = d.changeSource({ host: pair.master.host, port: pair.master.port, user, password });
          await sql.query(change.sql, change.values);
          await sql.query(d.startReplica);
        }),
      );
      await step(ctx, 'slave: wait until it runs and has caught up', () => waitCaughtUp(pair, d, md));
    } catch (err) {
      const what = emptied
        ? await restorePrevious(pair, slaveHost, d, preserved, trailer).then(
            () => putSettingsBack().then(() => `the slave was restored from its dump ${preserved}`),
          ).catch((e: unknown) => `restoring the slave from ${preserved} failed too (${messageOf(e)}); load that file by hand`)
        : await putSettingsBack().then(() => 'the slave still has its own data', () => 'the slave still has its own data (its read_only could not be put back)');
      throw fail(err, what);
    }
  } finally {
    await releaseRebuildLock(slaveHost, lock);
  }
  return { preserved };
}

/** Back to the slave's own data: nothing of the copy may remain, then its dump is loaded. */
async function restorePrevious(pair: Pair, host: Host, d: Dialect, preserved: string, trailer: string): Promise<void> {
  await withClient(pair.slave, async (sql) => {
    await sql.query(d.stopReplica).catch(() => undefined);
    await sql.query(d.resetReplicaAll);
    for (const s of d.readOnly(false)) await sql.query(s);
    await dropUserSchemas(sql);
    await sql.query(d.resetBinlogs);
  });
  await restoreFromFile(host, d, pair.slave, preserved, trailer);
}

async function waitCaughtUp(pair: Pair, d: Dialect, md: Dialect): Promise<void> {
  await pollUntil(`both replication threads of ${pair.slave.ref} to run`, 120_000, () =>
    withClient(pair.slave, async (sql) => {
      const r = (await readFacts(sql)).replica;
      // An SQL error will not go away by waiting.
      if (r?.lastSqlErrno) throw new PollAbort(`the slave stopped on error ${r.lastSqlErrno}: ${r.lastSqlError}`);
      if (r && r.ioRunning === 'Yes' && r.sqlRunning === 'Yes' && r.secondsBehind !== null) return true;
      if (r?.lastIoErrno) throw new Error(`IO error ${r.lastIoErrno}: ${r.lastIoError}`);
      return undefined;
    }),
  );
  const target = await withClient(pair.master, async (sql) => String((await sql.query(`SELECT ${md.executedGtids} AS g`))[0]!.g).replace(/\s+/g, ''));
  const done = await withClient(pair.slave, async (sql) => Number((await sql.query(d.waitForGtids, [target, CATCHUP_AFTER_COPY_S], (CATCHUP_AFTER_COPY_S + 30) * 1000))[0]!.r));
  if (done !== 0) throw new DbreplError('STEP', `the slave did not execute the master's GTIDs ${target} within ${CATCHUP_AFTER_COPY_S}s`);
}

async function enableBinlog(master: Server, host: Host, d: Dialect, facts: MyFacts): Promise<void> {
  const serverId = facts.serverId === 0 ? serverIdFor(master, [0]) : facts.serverId;
  await writeOptions(host, master, optionsFile(master), { log_bin: 'mysql-bin', binlog_format: 'ROW', server_id: serverId });
  await runChecked(host, serviceArgv(service(master, d).stop), `stop command of ${master.ref}`);
  await runChecked(host, serviceArgv(service(master, d).start), `start command of ${master.ref}`);
  await pollUntil(`${master.ref} to come back with binary logging on`, 180_000, () =>
    withClient(master, async (sql) => ((await readFacts(sql)).logBin ? true : undefined)),
  );
}

/** Disable: catch up by GTID, stop and reset replication completely, writable again. */
export async function disable(pair: Pair, _planned: PlannedPair, ctx: ApplyContext): Promise<void> {
  const slaveHost = await ctx.hosts.forServer(pair.slave);
  const md = await withClient(pair.master, dialectOf);
  const target = await step(ctx, 'master: note its executed GTIDs', () =>
    withClient(pair.master, async (sql) => String((await sql.query(`SELECT ${md.executedGtids} AS g`))[0]!.g).replace(/\s+/g, '')),
  );
  const d = await withClient(pair.slave, dialectOf);
  await step(ctx, 'slave: wait until it has executed them', () =>
    withClient(pair.slave, async (sql) => {
      const r = Number((await sql.query(d.waitForGtids, [target, pair.catchupTimeoutSeconds], (pair.catchupTimeoutSeconds + 30) * 1000))[0]!.r);
      if (r !== 0) {
        const now = String((await sql.query(`SELECT ${d.executedGtids} AS g`))[0]!.g);
        throw new DbreplError('STEP', `the slave did not reach the master's GTIDs ${target} within ${pair.catchupTimeoutSeconds}s (it is at ${now}); nothing was changed (raise catchup_timeout or repair the link, then apply again)`);
      }
    }),
  );
  await step(ctx, 'slave: stop and reset replication, make it writable', () =>
    withClient(pair.slave, async (sql) => {
      const facts = await readFacts(sql);
      await sql.query(d.stopReplica);
      await sql.query(d.resetReplicaAll);
      for (const s of d.readOnly(false)) await sql.query(s);
      if (d.needsOptionsFile) {
        await verifyHost(slaveHost, pair.slave, facts, facts.hostname);
        await writeOptions(slaveHost, pair.slave, optionsFile(pair.slave), { read_only: 0 });
      }
    }),
  );
}
