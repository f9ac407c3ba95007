import * as path from 'node:path';
import { DbreplError, StepError, messageOf } from '../../errors';
import { humanBytes } from '../../util/bytes';
import { Host, pathExists, readFile, runChecked, runShell, statOwner, writeFile } from '../../hosts/host';
import type { PlannedPair } from '../../plan/types';
import type { Pair, Server } from '../../topology';
import { pollUntil } from '../../util/poll';
import type { ApplyContext } from '../engine';
import { withClient, Sql } from './client';
import { formatConninfo } from './conninfo';
import { admitsReplication, hbaLine } from './hba';
import { hbaRules, PgFacts, readFacts } from './inspect';
import { lsnToBigInt } from './lsn';
import { scramVerifier } from './scram';
import { DEFAULT_SERVICE, preservedPath, restartSettings, slotName } from './state';

const STOP_TIMEOUT_MS = 120_000;
const START_TIMEOUT_MS = 180_000;

/** Runs one named step; any failure becomes a StepError naming it. */
async function step<T>(ctx: ApplyContext, name: string, fn: () => Promise<T>): Promise<T> {
  ctx.log.info(`  ${name}`);
  const started = Date.now();
  try {
    const out = await fn();
    ctx.log.info(`    done in ${((Date.now() - started) / 1000).toFixed(2)} s`);
    return out;
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new StepError(name, messageOf(err), { cause: err });
  }
}

function service(server: Server): { stop: string; start: string } {
  return server.service ?? DEFAULT_SERVICE;
}

/** Enable and resync: configure the master, rebuild the slave from a fresh base backup. */
export async function enable(pair: Pair, planned: PlannedPair, ctx: ApplyContext): Promise<{ preserved: string | null }> {
  const slot = slotName(pair);
  const user = pair.replication.user!;
  const password = pair.replication.password!;
  const masterHost = await ctx.hosts.forServer(pair.master);
  const slaveHost = await ctx.hosts.forServer(pair.slave);

  const slave = await step(ctx, 'slave: read its settings', () => withClient(pair.slave, readFacts));
  const master = await step(ctx, 'master: check version and WAL settings', () => withClient(pair.master, readFacts));
  if (Math.floor(master.versionNum / 10000) !== Math.floor(slave.versionNum / 10000)) {
    throw new StepError('master: check version and WAL settings', `major versions differ (master ${master.versionNum}, slave ${slave.versionNum}); physical replication needs the same major version`);
  }
  if (slave.systemId !== master.systemId && !slave.inRecovery && slave.clients.length > 0) {
    throw new StepError('slave: read its settings', `${pair.slave.ref} is serving ${slave.clients.length} replication connection(s) of its own; refusing to overwrite a live master`);
  }
  await step(ctx, "slave: check its login will survive the copy", () => checkLoginSurvives(pair));

  // Master side, one pair at a time per master: role, access rule, slot, WAL settings.
  await ctx.withLock(pair.master.ref, async () => {
    const current = await withClient(pair.master, readFacts);
    const restart = restartSettings(current, slot);
    if (Object.keys(restart).length > 0) {
      await step(ctx, 'master: change WAL settings and restart', () => restartMaster(pair.master, masterHost, restart));
    }
    await step(ctx, 'master: ensure replication role', () => withClient(pair.master, (sql) => ensureRole(sql, user, password)));
    await step(ctx, 'master: admit the slave in pg_hba.conf', () => ensureHba(pair, masterHost, user));
    await step(ctx, 'master: create replication slot', () => withClient(pair.master, (sql) => ensureSlot(sql, slot)));
  });

  const dataDir = slave.dataDirectory;
  const preserved = planned.preserved ?? preservedPath(dataDir, new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, ''));
  const owner = await step(ctx, 'slave: check the data directory', async () => {
    if (await pathExists(slaveHost, preserved)) {
      throw new DbreplError('STEP', `${preserved} already exists; refusing to overwrite kept data`);
    }
    return statOwner(slaveHost, dataDir);
  });
  await step(ctx, 'slave: check free disk space for the copy', async () => {
    const need = await withClient(pair.master, async (sql) => {
      const { rows } = await sql.query<{ bytes: string }>('SELECT sum(pg_database_size(datname))::text AS bytes FROM pg_database');
      return Number(rows[0]!.bytes);
    });
    const free = await freeBytes(slaveHost, path.dirname(dataDir));
    // The previous data stays on the same filesystem, so the copy needs room of its own (plus WAL written meanwhile).
    if (free < need * 1.1 + 64 * 1024 * 1024) {
      throw new DbreplError('STEP', `${path.dirname(dataDir)} on ${slaveHost.label} has ${humanBytes(free)} free; the copy of ${pair.master.ref} needs about ${humanBytes(need)} while the previous data is kept; free some space first`);
    }
  });
  const pgBin = await step(ctx, 'slave: find pg_basebackup', () => findBinary(slaveHost, Math.floor(slave.versionNum / 10000)));

  await step(ctx, 'slave: stop the server', async () => {
    await runShell(slaveHost, service(pair.slave).stop, `stop command of ${pair.slave.ref}`);
    await pollUntil(`${pair.slave.ref} to stop (postmaster.pid gone)`, STOP_TIMEOUT_MS, async () =>
      (await pathExists(slaveHost, `${dataDir}/postmaster.pid`)) ? undefined : true,
    );
  });
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
    await runChecked(slaveHost, ['mkdir', '-m', '700', '--', dataDir], `creating ${dataDir}`);
  });

  // From here until the server starts, a failure puts the old data back and restarts the slave as it was.
  try {
    await step(ctx, 'slave: pg_basebackup from the master', () =>
      runChecked(
        slaveHost,
        [
          pgBin, '-D', dataDir, '-X', 'stream', '-R', '-S', slot, '-c', 'fast', '--no-password',
          '-d', formatConninfo({ host: pair.master.host, port: pair.master.port, user, application_name: slot }),
        ],
        'pg_basebackup',
        { env: { PGPASSWORD: password, PGCONNECT_TIMEOUT: '15' } },
      ),
    );
    await step(ctx, "slave: restore its own configuration and ownership", async () => {
      await restoreOwnConfig(slaveHost, slave, dataDir, preserved);
      await runChecked(slaveHost, ['chown', '-R', `${owner.uid}:${owner.gid}`, '--', dataDir], 'chown of the new data directory');
      await runChecked(slaveHost, ['chmod', owner.mode, '--', dataDir], 'chmod of the new data directory');
    });
  } catch (err) {
    const rollback = await restorePrevious(slaveHost, pair.slave, dataDir, preserved).then(
      () => `the slave's previous data was put back at ${dataDir} and the server restarted`,
      (e: unknown) => `putting the previous data back failed (${messageOf(e)}); it is kept at ${preserved}`,
    );
    const failed = err instanceof StepError ? err.step : 'rebuild';
    throw new StepError(failed, `${err instanceof StepError ? messageOf(err.cause ?? err) : messageOf(err)}; ${rollback}`, { cause: err });
  }

  await step(ctx, 'slave: start the server and wait until it streams', async () => {
    await runShell(slaveHost, service(pair.slave).start, `start command of ${pair.slave.ref}`);
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
  });
  return { preserved };
}

/** Disable: catch up, promote, forget the master, drop the slot. */
export async function disable(pair: Pair, _planned: PlannedPair, ctx: ApplyContext): Promise<void> {
  const slot = slotName(pair);
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
    step(ctx, 'master: drop the replication slot', () =>
      withClient(pair.master, async (sql) => {
        await pollUntil(`slot ${slot} on ${pair.master.ref} to become inactive`, 60_000, async () => {
          const { rows } = await sql.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
          return rows.length === 0 || !rows[0]!.active ? true : undefined;
        });
        await sql.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      }),
    ),
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

async function ensureRole(sql: Sql, user: string, password: string): Promise<void> {
  const { rows } = await sql.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [user]);
  const ident = sql.escapeIdentifier(user);
  const verifier = sql.escapeLiteral(scramVerifier(password));
  if (rows.length === 0) {
    await sql.query(`CREATE ROLE ${ident} WITH REPLICATION LOGIN PASSWORD ${verifier}`);
  } else if (rows[0]!.rolsuper) {
    // Never change a superuser's password from a replication login; it already may replicate.
    await sql.query(`ALTER ROLE ${ident} WITH LOGIN`);
  } else {
    await sql.query(`ALTER ROLE ${ident} WITH REPLICATION LOGIN PASSWORD ${verifier}`);
  }
}

/** One physical slot per slave; an existing one is kept (it already retains WAL from before the backup starts). */
async function ensureSlot(sql: Sql, slot: string): Promise<void> {
  const { rows } = await sql.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  if (rows.length === 0) await sql.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
}

async function ensureHba(pair: Pair, masterHost: Host, user: string): Promise<void> {
  await withClient(pair.master, async (sql) => {
    const facts = await readFacts(sql);
    const verdict = admitsReplication(await hbaRules(sql), user, pair.slave.host, facts.ssl);
    if (verdict.admitted) return;
    const file = facts.hbaFile;
    const before = await readFile(masterHost, file);
    if (before === null) throw new DbreplError('STEP', `cannot read ${file} on ${masterHost.label}`);
    const method = facts.passwordEncryption === 'md5' ? 'md5' : 'scram-sha-256';
    const added = `# dbrepl: replication login ${user} from ${pair.slave.host} (first added for ${pair.slave.ref})\n${hbaLine(user, pair.slave.host, method)}\n`;
    await writeFile(masterHost, file, added + before);
    const errors = (await hbaRules(sql)).filter((r) => r.error);
    if (errors.length > 0) {
      await writeFile(masterHost, file, before);
      throw new DbreplError('STEP', `the new pg_hba.conf did not parse (${errors[0]!.error}); the file was put back`);
    }
    await sql.query('SELECT pg_reload_conf()');
  });
}

async function restartMaster(master: Server, host: Host, settings: Record<string, string>): Promise<void> {
  await withClient(master, async (sql) => {
    for (const [k, v] of Object.entries(settings)) await sql.query(`ALTER SYSTEM SET ${sql.escapeIdentifier(k)} = ${sql.escapeLiteral(v)}`);
  });
  await runShell(host, service(master).stop, `stop command of ${master.ref}`);
  await runShell(host, service(master).start, `start command of ${master.ref}`);
  await pollUntil(`${master.ref} to accept connections after restart`, START_TIMEOUT_MS, () =>
    withClient(master, async (sql) => {
      const f = await readFacts(sql);
      return f.walLevel !== 'minimal' ? true : undefined;
    }),
  );
}

async function freeBytes(host: Host, dir: string): Promise<number> {
  const out = await runChecked(host, ['df', '-Pk', '--', dir], `df ${dir}`);
  const fields = out.trim().split('\n').pop()!.split(/\s+/);
  const kb = Number(fields[3]);
  if (!Number.isFinite(kb)) throw new DbreplError('STEP', `cannot read free space of ${dir} from df`);
  return kb * 1024;
}

async function findBinary(host: Host, major: number): Promise<string> {
  const out = await runChecked(
    host,
    ['/bin/sh', '-c', 'p="/usr/lib/postgresql/$1/bin/pg_basebackup"; if [ -x "$p" ]; then echo "$p"; else command -v pg_basebackup; fi', 'sh', String(major)],
    'looking for pg_basebackup',
  );
  const bin = out.trim();
  if (!bin) throw new DbreplError('STEP', `pg_basebackup (PostgreSQL ${major}) is not installed on ${host.label}`);
  return bin;
}

const STANDBY_KEYS = /^\s*(primary_conninfo|primary_slot_name)\s*=/;

/**
 * pg_basebackup copies the master's configuration files when they live in its data
 * directory; the slave keeps its own (port, listen addresses, memory, access rules).
 * postgresql.auto.conf is the slave's old one with the standby settings -R just wrote.
 */
async function restoreOwnConfig(host: Host, slave: PgFacts, dataDir: string, preserved: string): Promise<void> {
  const inside = (file: string): string | null => (file.startsWith(`${dataDir}/`) ? file.slice(dataDir.length + 1) : null);
  for (const file of [slave.configFile, slave.hbaFile, slave.identFile]) {
    const rel = inside(file);
    if (rel && (await pathExists(host, `${preserved}/${rel}`))) {
      await runChecked(host, ['cp', '-p', '--', `${preserved}/${rel}`, `${dataDir}/${rel}`], `restoring ${rel}`);
    }
  }
  const written = (await readFile(host, `${dataDir}/postgresql.auto.conf`)) ?? '';
  const own = (await readFile(host, `${preserved}/postgresql.auto.conf`)) ?? '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n';
  const standby = written.split('\n').filter((l) => STANDBY_KEYS.test(l));
  const kept = own.split('\n').filter((l) => !STANDBY_KEYS.test(l) && l !== '');
  await writeFile(host, `${dataDir}/postgresql.auto.conf`, [...kept, ...standby].join('\n') + '\n');
}

async function restorePrevious(host: Host, slave: Server, dataDir: string, preserved: string): Promise<void> {
  await runChecked(host, ['rm', '-rf', '--', dataDir], `removing the partial ${dataDir}`);
  await runChecked(host, ['mv', '--no-target-directory', '--', preserved, dataDir], `moving ${preserved} back`);
  await runShell(host, service(slave).start, `start command of ${slave.ref}`);
}
