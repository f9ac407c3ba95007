import { DbreplError, StepError, messageOf } from '../../errors';
import { pathExists, runChecked, statOwner } from '../../hosts/host';
import type { PlannedPair } from '../../plan/types';
import type { Pair, Server } from '../../topology';
import { pollUntil } from '../../util/poll';
import type { ApplyContext } from '../engine';
import { withClient } from './client';
import { lsnToBigInt } from './lsn';
import { addHbaRule, dropSlotWhenFree, ensureRole, ensureSlot, hbaAdmits, restartMaster } from './master';
import { PgFacts, readFacts } from './inspect';
import { checkFreeSpace, releaseRebuildLock, takeRebuildLock } from '../../hosts/rebuild';
import { findBasebackup, restoreOwnConfig, restorePrevious, standbyShortfalls, verifyHost } from './slave';
import { DEFAULT_SERVICE, restartSettings, slotName } from './state';
import { serviceArgv, step } from '../steps';
import { service, START_TIMEOUT_MS, STOP_TIMEOUT_MS } from './steps';

const major = (f: PgFacts): number => Math.floor(f.versionNum / 10000);

/**
 * Enable and resync: every check first, then the master (role, access rule, slot), then
 * the slave is stopped and rebuilt from a fresh base backup. From the moment the slave
 * stops, any failure puts it back as it was; a slot this run created is dropped again.
 */
export async function enable(pair: Pair, planned: PlannedPair, ctx: ApplyContext): Promise<{ preserved: string | null }> {
  const slot = slotName(pair);
  const user = pair.replication.user!;
  const password = pair.replication.password!;
  const masterHost = await ctx.hosts.forServer(pair.master);
  const slaveHost = await ctx.hosts.forServer(pair.slave);

  const slave = await step(ctx, 'slave: read its settings', () => withClient(pair.slave, readFacts));
  const master = await step(ctx, 'master: read its settings', () => withClient(pair.master, readFacts));
  const dataDir = slave.dataDirectory;
  const preserved = planned.preserved;
  if (!preserved) throw new StepError('preflight', 'the plan names no path for the previous data');
  const restart = restartSettings(master, slot);
  const hbaOk = await hbaAdmits(pair, user, master.ssl);

  await step(ctx, 'preflight: versions, roles, standby settings, hosts, disk', async () => {
    if (major(master) !== major(slave)) {
      throw new DbreplError('STEP', `major versions differ (master ${master.versionNum}, slave ${slave.versionNum}); physical replication needs the same major version`);
    }
    if (!slave.inRecovery && (slave.clients.length > 0 || slave.slots.length > 0)) {
      throw new DbreplError('STEP', `${pair.slave.ref} is a primary with replication of its own (${slave.clients.length} connection(s), ${slave.slots.length} slot(s)); refusing to overwrite a master — remove its slots and standbys first, or fix the file`);
    }
    const short = standbyShortfalls(master, slave);
    if (short.length > 0) {
      throw new DbreplError('STEP', `the slave's own settings are lower than the master's (${short.join(', ')}); a standby refuses to run with them: raise them in ${pair.slave.ref}'s configuration first`);
    }
    if (!pair.slave.service && pair.slave.host === pair.master.host) {
      throw new DbreplError('STEP', `${pair.slave.ref} runs on the same host as its master and has no service commands; the default (${DEFAULT_SERVICE.stop}) would stop every cluster there, the master included: set service.stop and service.start for ${pair.slave.ref}`);
    }
    await checkLoginSurvives(pair);
    await verifyHost(slaveHost, pair.slave, slave);
    if (!hbaOk || Object.keys(restart).length > 0) await verifyHost(masterHost, pair.master, master);
    if (await pathExists(slaveHost, preserved)) throw new DbreplError('STEP', `${preserved} already exists; refusing to overwrite kept data`);
    const need = await withClient(pair.master, async (sql) => {
      const { rows } = await sql.query<{ bytes: string }>('SELECT sum(pg_database_size(datname))::text AS bytes FROM pg_database');
      return Number(rows[0]!.bytes);
    });
    await checkFreeSpace(slaveHost, dataDir, need, pair.master.ref);
  });
  const owner = await statOwner(slaveHost, dataDir);
  const pgBin = await findBasebackup(slaveHost, major(slave));

  const lock = await step(ctx, 'slave: take the rebuild lock', () =>
    takeRebuildLock(slaveHost, pair.slave, dataDir, { pair: pair.name, preserved }),
  );
  let createdSlot = false;
  try {
    await ctx.withLock(pair.master.ref, async () => {
      if (Object.keys(restart).length > 0) {
        await step(ctx, 'master: change WAL settings and restart', () => restartMaster(pair.master, masterHost, restart));
      }
      await step(ctx, 'master: ensure replication role', () => withClient(pair.master, (sql) => ensureRole(sql, pair.master, user, password)));
      if (!hbaOk) await step(ctx, 'master: admit the slave in pg_hba.conf', () => addHbaRule(pair, masterHost, user));
      createdSlot = await step(ctx, 'master: create replication slot', () => withClient(pair.master, (sql) => ensureSlot(sql, slot)));
    });

    await step(ctx, 'slave: stop the server', async () => {
      await runChecked(slaveHost, serviceArgv(service(pair.slave).stop), `stop command of ${pair.slave.ref}`);
      await pollUntil(`${pair.slave.ref} to stop (postmaster.pid gone)`, STOP_TIMEOUT_MS, async () =>
        (await pathExists(slaveHost, `${dataDir}/postmaster.pid`)) ? undefined : true,
      );
    });
    let moved = false;
    try {
      await step(ctx, 'master: wait until the slot is free', () =>
        withClient(pair.master, (sql) =>
          pollUntil(`slot ${slot} on ${pair.master.ref} to be released by the stopped slave`, 60_000, async () => {
            const { rows } = await sql.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
            return rows[0]?.active ? undefined : true;
          }),
        ),
      );
      await step(ctx, 'slave: move the data directory aside', async () => {
        await runChecked(slaveHost, ['mv', '--no-target-directory', '--', dataDir, preserved], `moving ${dataDir} to ${preserved}`);
        moved = true;
        await runChecked(slaveHost, ['mkdir', '-m', '700', '--', dataDir], `creating ${dataDir}`);
      });
      await step(ctx, 'slave: pg_basebackup from the master', () =>
        runChecked(slaveHost, [pgBin, '-D', dataDir, '-X', 'stream', '-R', '-S', slot, '-c', 'fast', '--no-password'], 'pg_basebackup', {
          // Connection settings through the environment: nothing from the file on the command line.
          env: { PGHOST: pair.master.host, PGPORT: String(pair.master.port), PGUSER: user, PGPASSWORD: password, PGAPPNAME: slot, PGCONNECT_TIMEOUT: '15' },
        }),
      );
      await step(ctx, 'slave: restore its own configuration and ownership', async () => {
        await restoreOwnConfig(slaveHost, slave, dataDir, preserved);
        await runChecked(slaveHost, ['chown', '-R', `${owner.uid}:${owner.gid}`, '--', dataDir], 'chown of the new data directory');
        await runChecked(slaveHost, ['chmod', owner.mode, '--', dataDir], 'chmod of the new data directory');
      });
      await step(ctx, 'slave: start the server and wait until it streams', async () => {
        await runChecked(slaveHost, serviceArgv(service(pair.slave).start), `start command of ${pair.slave.ref}`);
        await waitStreaming(pair, slot);
      });
    } catch (err) {
      const what = await restorePrevious(slaveHost, pair.slave, dataDir, preserved, moved);
      throw new StepError(err instanceof StepError ? err.step : 'rebuild', `${err instanceof StepError ? messageOf(err.cause ?? err) : messageOf(err)}; ${what}`, { cause: err });
    }
  } catch (err) {
    if (createdSlot) {
      await withClient(pair.master, (sql) => dropSlotWhenFree(sql, slot, pair.master.ref)).catch((e: unknown) =>
        ctx.log.warn(`${pair.name}: could not drop slot ${slot} on ${pair.master.ref} after the failure (${messageOf(e)}); drop it by hand, it retains WAL`),
      );
    }
    throw err;
  } finally {
    await releaseRebuildLock(slaveHost, lock);
  }
  return { preserved };
}

async function waitStreaming(pair: Pair, slot: string): Promise<void> {
  await pollUntil(`${pair.slave.ref} to stream from ${pair.master.ref}`, START_TIMEOUT_MS, () =>
    withClient(pair.slave, async (sql) => {
      const f = await readFacts(sql);
      return f.inRecovery && f.receiver?.status === 'streaming' ? true : undefined;
    }),
  );
  await pollUntil(`${pair.master.ref} to report the slave as streaming`, 60_000, () =>
    withClient(pair.master, async (sql) => {
      const { rows } = await sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
          WHERE s.slot_name = $1 AND r.state = 'streaming'`,
        [slot],
      );
      return rows[0]!.n > 0 ? true : undefined;
    }),
  );
}

/** Disable: catch up, promote, forget the master, drop the slot the slave used. */
export async function disable(pair: Pair, _planned: PlannedPair, ctx: ApplyContext): Promise<void> {
  // The slot the slave really uses (a pair set up by hand may use its own name).
  const slot = await step(ctx, 'slave: read its settings', () =>
    withClient(pair.slave, async (sql) => {
      const f = await readFacts(sql);
      return f.receiver?.slotName ?? f.primarySlotName ?? slotName(pair);
    }),
  );
  // The target is the end of a marker record written now: it follows every commit the master
  // acknowledged (flushed or not, synchronous_commit = off included), and unlike the bare
  // insert position it is a record end, which a standby's replay position can reach exactly
  // (after a WAL segment switch the insert position sits past a page header no standby
  // replays until the next record, up to 15 s later on an idle master).
  const target = await step(ctx, 'master: note the current WAL position', () =>
    withClient(pair.master, async (sql) => {
      const { rows } = await sql.query<{ lsn: string }>(
        `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                 ELSE pg_logical_emit_message(false, 'dbrepl', $1) END)::text AS lsn`,
        [`disable ${pair.name}`],
      );
      return rows[0]?.lsn ?? null;
    }),
  );
  await step(ctx, 'slave: wait until it has replayed everything', async () => {
    if (!target) throw new DbreplError('STEP', 'the master reported no WAL position');
    const goal = lsnToBigInt(target);
    let behind = '';
    try {
      await pollUntil(`${pair.slave.ref} to replay up to ${target}`, pair.catchupTimeoutSeconds * 1000, () =>
        withClient(pair.slave, async (sql) => {
          const f = await readFacts(sql);
          if (!f.inRecovery) return true;
          if (!f.lsn) return undefined;
          const have = lsnToBigInt(f.lsn);
          behind = `${goal - have} bytes behind`;
          return have >= goal ? true : undefined;
        }),
      );
    } catch (err) {
      throw new DbreplError('STEP', `${messageOf(err)}${behind ? `; slave is ${behind}` : ''}; nothing was changed (raise catchup_timeout or repair the link, then apply again)`);
    }
  });
  await step(ctx, 'slave: promote', () =>
    withClient(pair.slave, async (sql) => {
      const { rows } = await sql.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      if (rows[0]!.r) {
        const p = await sql.query<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
        if (!p.rows[0]!.ok) throw new DbreplError('STEP', 'pg_promote did not finish within 60s');
      }
    }),
  );
  await step(ctx, 'slave: clear primary_conninfo and primary_slot_name', () =>
    withClient(pair.slave, async (sql) => {
      await sql.query('ALTER SYSTEM RESET primary_conninfo');
      await sql.query('ALTER SYSTEM RESET primary_slot_name');
      await sql.query('SELECT pg_reload_conf()');
    }),
  );
  await ctx.withLock(pair.master.ref, () =>
    step(ctx, `master: drop the replication slot ${slot}`, () => withClient(pair.master, (sql) => dropSlotWhenFree(sql, slot, pair.master.ref))),
  );
}

/**
 * A physical copy carries the master's roles: once rebuilt, the slave only accepts the
 * logins the master has. Refuse before anything changes if the slave's admin login from
 * the file would not work there, instead of leaving a slave the tool can no longer manage.
 */
async function checkLoginSurvives(pair: Pair): Promise<void> {
  const probe: Server = { ...pair.master, user: pair.slave.user, password: pair.slave.password };
  try {
    await withClient(probe, async () => undefined);
  } catch (err) {
    throw new DbreplError(
      'STEP',
      `after the copy ${pair.slave.ref} will have the roles of ${pair.master.ref}, but its login from the file (user ${pair.slave.user ?? 'postgres'}) does not work on ${pair.master.ref}: ${messageOf(err).replace(/^[^:]+: /, '')}; give both servers the same admin user and password`,
      { cause: err },
    );
  }
}

