import { DbreplError, messageOf } from '../../errors';
import { pathExists, runChecked, runScript, statOwner } from '../../hosts/commands';
import { ownerOfDirectory } from '../../hosts/files';
import type { RunAs } from '../../hosts/host';
import { copyTimeoutMs, SERVICE_TIMEOUT_MS } from '../../hosts/limits';
import type { Pair } from '../../model';
import { pollUntil } from '../../util/poll';
import { CopyProgress } from '../../util/progress';
import { stepState } from '../engine';
import { oneWriterStep } from '../fence';
import type { ActionPlan, ChangeAction, Session, Sides, Step } from '../engine';
import { serviceArgv } from '../service';
import { Sql, withClient } from './client';
import { hbaDecision, hbaLine } from './hba';
import { databaseBytes, PgFacts, readFacts } from './inspect';
import { lsnToBigInt } from './lsn';
import { addHbaRule, dropSlotWhenFree, ensureRole, ensureSlot, restartMaster, restoreMaster } from './master';
import { findBasebackup, restoreOwnConfig } from './slave';
import { forgetTlsSteps, removeTlsFiles, replicationTls, tlsFilesFor, writeTlsFiles } from '../tls';
import { preservedPath, restartSettings, service, slotName, START_TIMEOUT_MS, STOP_TIMEOUT_MS } from './state';

export const major = (f: PgFacts): number => Math.floor(f.versionNum / 10000);

export function plan(pair: Pair, action: ChangeAction, sides: Sides<PgFacts>, stamp: string, state?: Record<string, unknown>): ActionPlan {
  return action === 'disable' ? disableSteps(pair, sides, state) : enableSteps(pair, sides, stamp, state);
}

/**
 * Enable and resync: the master first (settings, role, access rule, slot), then the slave
 * is stopped and rebuilt from a fresh base backup. Each step that changes something says
 * how it is undone; the protocol undoes them, newest first, when a later step fails.
 */
function enableSteps(pair: Pair, { m, s }: Sides<PgFacts>, stamp: string, state?: Record<string, unknown>): ActionPlan {
  const slot = slotName(pair);
  const user = pair.replication.user ?? '';
  const password = pair.replication.password ?? '';
  const dataDir = s.dataDirectory;
  const preserved = preservedPath(dataDir, stamp);
  const restart = restartSettings(m, slot);
  const restartKeys = Object.entries(restart);
  const tlsMode = replicationTls(pair.master);
  const tlsFiles = tlsMode === 'none' ? null : tlsFilesFor(dataDir, pair.master);
  // With TLS the slave connects over SSL (so a hostssl rule applies); without, libpq prefers SSL when the master offers it.
  const ssl = tlsMode !== 'none' || m.ssl;
  const hba = m.hbaRules ? hbaDecision(m.hbaRules, user, pair.slave.host, ssl) : { kind: 'add' as const, why: 'the rules cannot be read' };
  const method = m.passwordEncryption === 'md5' ? 'md5' : 'scram-sha-256';
  const st = stepState(state, { createdSlot: false, moved: false, autoConf: null as { file: string; text: string | null } | null, tlsCreated: [] as string[] });
  let owner: Promise<RunAs> | undefined;
  const ownerOf = (session: Session): Promise<RunAs> =>
    (owner ??= session.hosts.forServer(pair.slave).then((h) => statOwner(h, dataDir)));
  const slaveHost = (session: Session) => session.hosts.forServer(pair.slave);
  const stopSlave = async (session: Session): Promise<void> => {
    const host = await slaveHost(session);
    await runChecked(host, serviceArgv(service(pair.slave).stop), `stop command of ${pair.slave.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
    await pollUntil(`${pair.slave.ref} to stop (postmaster.pid gone)`, STOP_TIMEOUT_MS, async () =>
      (await pathExists(host, `${dataDir}/postmaster.pid`)) ? undefined : true,
    );
  };
  const startSlave = async (session: Session): Promise<void> => {
    await runChecked(await slaveHost(session), serviceArgv(service(pair.slave).start), `start command of ${pair.slave.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
  };

  const steps: Step[] = [];
  if (restartKeys.length > 0) {
    steps.push({
      id: 'master-settings',
      side: 'master',
      title: 'change WAL settings and restart',
      text: `master: ALTER SYSTEM SET ${restartKeys.map(([k, v]) => `${k}=${v}`).join(', ')} and restart the master`,
      run: async (session) => restartMaster(session, pair.master, await session.hosts.forServer(pair.master), restart, async (auto) => {
        st.autoConf = auto;
        await session.checkpoint?.();
      }),
      undo: {
        text: "if the master does not come back: its postgresql.auto.conf as before, and start it",
        run: async (session) => (st.autoConf ? restoreMaster(session, pair.master, await session.hosts.forServer(pair.master), st.autoConf) : ''),
      },
    });
  }
  steps.push({
    id: 'role',
    side: 'master',
    title: 'ensure replication role',
    text: `master: ensure role ${user} (CREATE/ALTER ROLE ... REPLICATION LOGIN PASSWORD with a SCRAM verifier of the password from the file)`,
    run: (session) => withClient(session, pair.master, (sql) => ensureRole(sql, pair.master, user, password)),
  });
  steps.push({
    id: 'hba',
    side: 'master',
    title: 'admit the slave in pg_hba.conf',
    // The rules on disk are what pg_hba_file_rules shows; a reload makes them the rules in force.
    text:
      hba.kind === 'admitted'
        ? `master: ${m.hbaFile} line ${hba.line} admits ${user} from ${pair.slave.host}; reload (pg_reload_conf) so the file on disk is in force`
        : hba.kind === 'refused'
          ? `master: ${m.hbaFile} line ${hba.line} ("${hba.rule}") refuses ${user} from ${pair.slave.host}: nothing is added above an operator's rule`
          : `master: add "${hbaLine(user, pair.slave.host, method, tlsMode !== 'none')}" at the top of ${m.hbaFile} and reload (no rule admits it: ${hba.why})`,
    run: (session) => addHbaRule(session, pair, () => session.hosts.forServer(pair.master), user, tlsMode !== 'none'),
  });
  steps.push({
    id: 'slot',
    side: 'master',
    title: 'create replication slot',
    text: `master: create physical replication slot ${slot} (pg_create_physical_replication_slot), unless it exists (a lost one is dropped and created again)`,
    run: async (session) => {
      // Journalled before it is created (or a lost one replaced): a run killed in between drops it on rollback.
      await withClient(session, pair.master, (sql) =>
        ensureSlot(sql, slot, pair.master.ref, async () => {
          st.createdSlot = true;
          await session.checkpoint?.();
        }),
      );
    },
    undo: {
      text: `drop slot ${slot} if this run created it`,
      run: async (session) => {
        // Created by this run: the journal says so, or the master had no such slot when planned
        // (journals written before the slot was journalled ahead of its creation hold only the second).
        if (!st.createdSlot && m.slots.some((x) => x.name === slot)) return '';
        if (!st.createdSlot && !(await withClient(session, pair.master, async (sql) => (await sql.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows.length > 0))) return '';
        await withClient(session, pair.master, (sql) => dropSlotWhenFree(sql, slot, pair.master.ref));
        return `slot ${slot}, created by this run, was dropped`;
      },
    },
  });
  steps.push({
    id: 'stop',
    side: 'slave',
    title: 'stop the server',
    text: `slave: stop the server (${service(pair.slave).stop})`,
    run: stopSlave,
    undo: {
      text: 'start the slave again if its data was not moved',
      run: async (session) => {
        // After a move, the move's undo restarts the server on the data it put back; a server
        // whose stop failed is still running and needs nothing.
        // Moved is what the disk says (the kept path is new to this run), not what a killed run journalled.
        const host = await slaveHost(session);
        if ((await pathExists(host, preserved)) || (await pathExists(host, `${dataDir}/postmaster.pid`))) return '';
        await startSlave(session);
        return 'the slave was started again on its own data';
      },
    },
  });
  steps.push({
    id: 'slot-free',
    side: 'master',
    title: 'wait until the slot is free',
    text: `master: wait until slot ${slot} is released by the stopped slave`,
    run: async (session) => {
      await withClient(session, pair.master, (sql) =>
        pollUntil(`slot ${slot} on ${pair.master.ref} to be released by the stopped slave`, 60_000, async () => {
          const { rows } = await sql.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
          return rows[0]?.active ? undefined : true;
        }),
      );
    },
  });
  steps.push({
    id: 'move-aside',
    side: 'slave',
    title: 'move the data directory aside',
    text: `slave: move ${dataDir} aside to ${preserved} (kept)`,
    // As the owner of the parent directory (root only where root owns it): a link planted
    // there leads only where that user could go anyway.
    run: async (session) => {
      const host = await slaveHost(session);
      const as = await ownerOf(session);
      const parent = await ownerOfDirectory(host, dataDir);
      await runChecked(host, ['mv', '--no-target-directory', '--', dataDir, preserved], `moving ${dataDir} to ${preserved}`, { as: parent });
      st.moved = true;
      await session.checkpoint?.();
      await runChecked(host, ['mkdir', '-m', '700', '--', dataDir], `creating ${dataDir}`, { as: parent });
      if (!parent) await runChecked(host, ['chown', '-h', `${as.uid}:${as.gid}`, '--', dataDir], `giving ${dataDir} to its owner`);
    },
    undo: {
      text: `put ${preserved} back at ${dataDir} and start the slave`,
      run: async (session) => {
        const host = await slaveHost(session);
        // The kept path is new to this run: it exists exactly when the move happened (and was not put back).
        if (!(await pathExists(host, preserved))) {
          if (!st.moved) return '';
          // Put back already, by an undo that then failed (or was killed) before the start: start it.
          if (!(await pathExists(host, `${dataDir}/PG_VERSION`))) throw new DbreplError('STEP', `${preserved} is missing and ${dataDir} holds no data directory; both were left as they are`);
          if (await pathExists(host, `${dataDir}/postmaster.pid`)) return '';
          await startSlave(session);
          return `the slave's previous data was back at ${dataDir}; the server was started`;
        }
        // Whatever runs on the partial copy stops first; its failure (nothing running) is expected.
        await host.run(serviceArgv(service(pair.slave).stop), { timeoutMs: SERVICE_TIMEOUT_MS });
        const parent = await ownerOfDirectory(host, dataDir);
        await runChecked(host, ['rm', '-rf', '--', dataDir], `removing the partial ${dataDir}`, { as: parent });
        await runChecked(host, ['mv', '--no-target-directory', '--', preserved, dataDir], `moving ${preserved} back`, { as: parent });
        await startSlave(session);
        return `the slave's previous data was put back at ${dataDir} and the server restarted`;
      },
    },
  });
  if (tlsFiles) {
    steps.push({
      id: 'tls-files',
      side: 'slave host',
      title: "write the master's TLS files",
      text: `slave host: write ${[tlsFiles.ca, tlsFiles.cert, tlsFiles.key].filter(Boolean).join(', ')} (the master's CA${tlsFiles.cert ? ' and client certificate' : ''}, readable by the slave's server only)`,
      run: async (session) => {
        st.tlsCreated = await writeTlsFiles(await slaveHost(session), tlsFiles, pair.master, await ownerOf(session));
        await session.checkpoint?.();
      },
      undo: {
        text: 'remove the TLS files this run wrote',
        run: async (session) => {
          await removeTlsFiles(await slaveHost(session), st.tlsCreated);
          return '';
        },
      },
    });
  }
  const sslEnv: Record<string, string> = tlsFiles
    ? { PGSSLMODE: tlsMode, ...(tlsFiles.ca ? { PGSSLROOTCERT: tlsFiles.ca } : {}), ...(tlsFiles.cert ? { PGSSLCERT: tlsFiles.cert } : {}), ...(tlsFiles.key ? { PGSSLKEY: tlsFiles.key } : {}) }
    : {};
  steps.push({
    id: 'copy',
    side: 'slave',
    title: 'pg_basebackup from the master',
    text: `slave: pg_basebackup -X stream -R -S ${slot} -c fast from ${pair.master.host}:${pair.master.port} as ${user} (full online backup of the master), as the owner of ${dataDir}${
      tlsFiles ? `; over TLS, sslmode=${tlsMode}${tlsFiles.ca ? ` sslrootcert=${tlsFiles.ca}` : ''} (kept in primary_conninfo for the replication channel)` : ''
    }`,
    run: async (session) => {
      const host = await slaveHost(session);
      const as = await ownerOf(session);
      const bin = await findBasebackup(host, major(s));
      const bytes = await withClient(session, pair.master, databaseBytes);
      // The password reaches pg_basebackup alone, through stdin: not in argv, not in the runner's environment.
      // Its progress meter (`123/4567 kB (2%), 0/1 tablespace`), every few seconds in the log: a copy of hours must show it is moving.
      const meter = new CopyProgress(`${pair.name}: copy`, (l) => session.log.info(l), { total: bytes, estimated: true, everyMs: session.progressEveryMs });
      const progress = (line: string): void => {
        const m = /^(\d+)\/(\d+) kB \(\d+%\)/.exec(line);
        if (!m) return;
        // pg_basebackup's own total (what the master reported at the start): near exact.
        meter.setTotal(Number(m[2]) * 1024);
        meter.update(Number(m[1]) * 1024);
      };
      await runScript(host, 'PGPASSWORD="$pgpassword" exec "$@"', [bin, '-D', dataDir, '-X', 'stream', '-R', '-S', slot, '-c', 'fast', '--no-password', '--progress'], 'pg_basebackup', {
        progress,
        secrets: { pgpassword: password },
        env: { PGHOST: pair.master.host, PGPORT: String(pair.master.port), PGUSER: user, PGAPPNAME: slot, PGCONNECT_TIMEOUT: '15', ...sslEnv },
        timeoutMs: copyTimeoutMs(bytes, pair.copyTimeoutSeconds),
        as,
      });
      meter.finish();
    },
  });
  steps.push({
    id: 'own-config',
    side: 'slave',
    title: 'restore its own configuration and ownership',
    text: `slave: restore its own configuration files (postgresql.conf, pg_hba.conf, pg_ident.conf where they live in the data directory; postgresql.auto.conf plus the standby settings)`,
    run: async (session) => {
      const host = await slaveHost(session);
      const as = await ownerOf(session);
      await restoreOwnConfig(host, s, dataDir, preserved, as);
    },
  });
  steps.push({
    id: 'start',
    side: 'slave',
    title: 'start the server and wait until it streams',
    text: `slave: start the server (${service(pair.slave).start}) and wait until both sides see it streaming`,
    run: async (session) => {
      await startSlave(session);
      await waitStreaming(session, pair, slot);
    },
  });

  const warnings: string[] = [];
  if (restartKeys.length > 0) warnings.push(`the master ${pair.master.ref} must restart to change ${restartKeys.map(([k]) => k).join(', ')}`);
  if (pair.slave.dataDir && pair.slave.dataDir !== s.dataDirectory) {
    warnings.push(`data_dir ${pair.slave.dataDir} in the file differs from the running server's ${s.dataDirectory}; the running server's is used`);
  }
  return {
    steps,
    disruption: restartKeys.length > 0 ? 'master restarts (brief outage); slave restarts and is rebuilt' : 'slave restarts and is rebuilt; master keeps serving',
    preserved,
    lockDir: dataDir,
    warnings,
  };
}

async function waitStreaming(session: Session, pair: Pair, slot: string): Promise<void> {
  await pollUntil(`${pair.slave.ref} to stream from ${pair.master.ref}`, START_TIMEOUT_MS, () =>
    withClient(session, pair.slave, async (sql) => {
      const f = await readFacts(sql);
      return f.inRecovery && f.receiver?.status === 'streaming' ? true : undefined;
    }),
  );
  await pollUntil(`${pair.master.ref} to report the slave as streaming`, 60_000, () =>
    withClient(session, pair.master, async (sql) => {
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
function disableSteps(pair: Pair, { m, s }: Sides<PgFacts>, state?: Record<string, unknown>): ActionPlan {
  // A master that cannot be reached (a forced disable): no catch-up, no slot to drop; the slave is promoted as it is.
  const masterless = !m;
  // promoting: the point of no return (journalled before pg_promote): from then on the fence stays.
  const st = stepState(state, { promoting: false, fenced: false });
  // The slot the slave really uses (a pair set up by hand may use its own name).
  const slot = s.receiver?.slotName ?? s.primarySlotName ?? slotName(pair);
  let target: string | null = null;
  // Without its master there is nothing to fence (core's refusal, overridden by --force, said so).
  const fence = masterless ? { before: [], after: [] } : fenceSteps(pair, m, st);
  const all: Step[] = [
    ...fence.before,
    {
      id: 'note-position',
      side: 'master',
      title: 'note the current WAL position',
      text: `master: note the current WAL position (the end of a marker record, pg_logical_emit_message)`,
      // The target is the end of a marker record written now: it follows every commit the master
      // acknowledged (flushed or not, synchronous_commit = off included), and unlike the bare
      // insert position it is a record end, which a standby's replay position can reach exactly
      // (after a WAL segment switch the insert position sits past a page header no standby
      // replays until the next record, up to 15 s later on an idle master).
      run: async (session) => {
        target = await withClient(session, pair.master, async (sql) => {
          const { rows } = await sql.query<{ lsn: string }>(
            `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                     ELSE pg_logical_emit_message(false, 'dbrepl', $1) END)::text AS lsn`,
            [`disable ${pair.name}`],
          );
          return rows[0]?.lsn ?? null;
        });
        if (!target) throw new DbreplError('STEP', 'the master reported no WAL position');
      },
    },
    {
      id: 'catch-up',
      side: 'slave',
      title: 'wait until it has replayed everything',
      text: `slave: wait until it has replayed up to that position (at most ${pair.catchupTimeoutSeconds}s)`,
      run: async (session) => {
        const goal = lsnToBigInt(target!);
        let behind = '';
        try {
          await pollUntil(`${pair.slave.ref} to replay up to ${target}`, pair.catchupTimeoutSeconds * 1000, () =>
            withClient(session, pair.slave, async (sql) => {
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
      },
    },
    {
      id: 'promote',
      side: 'slave',
      title: 'promote',
      text: 'slave: promote (pg_promote)',
      run: (session) =>
        withClient(session, pair.slave, async (sql) => {
          const { rows } = await sql.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
          if (rows[0]!.r) {
            // A promotion that times out or is cancelled goes on in the server: journalled first, it counts as done.
            st.promoting = true;
            await session.checkpoint?.();
            const p = await sql.query<{ ok: boolean }>('SELECT pg_promote(true, 60) AS ok');
            if (!p.rows[0]!.ok) throw new DbreplError('STEP', 'pg_promote did not finish within 60s');
          }
        }),
    },
    {
      id: 'forget-master',
      side: 'slave',
      title: 'clear primary_conninfo and primary_slot_name',
      text: 'slave: ALTER SYSTEM RESET primary_conninfo, primary_slot_name; reload',
      run: (session) =>
        withClient(session, pair.slave, (sql) => alterSystem(sql, 'RESET primary_conninfo', 'RESET primary_slot_name')),
    },
    ...fence.after,
    {
      id: 'drop-slot',
      side: 'master',
      title: `drop the replication slot ${slot}`,
      text: `master: drop replication slot ${slot} (pg_drop_replication_slot)`,
      run: (session) => withClient(session, pair.master, (sql) => dropSlotWhenFree(sql, slot, pair.master.ref)),
    },
  ];
  const steps = masterless ? all.filter((x) => !x.side.startsWith('master') && x.id !== 'catch-up') : all;
  steps.push(...forgetTlsSteps(pair, s.dataDirectory));
  const warnings = masterless ? [`${pair.master.ref} cannot be reached: the slave is promoted without catching up, and the master keeps its replication slot ${slot} (drop it there once it is back, or it holds WAL)`] : [];
  return {
    steps,
    disruption: pair.fence && !masterless ? 'master becomes read-only (its client sessions are ended); slave becomes the standalone writable server' : 'slave becomes a standalone writable server; master keeps serving',
    preserved: null,
    lockDir: null,
    warnings,
  };
}

/** ALTER SYSTEM each change, then a reload. */
async function alterSystem(sql: Sql, ...changes: string[]): Promise<void> {
  for (const c of changes) await sql.query(`ALTER SYSTEM ${c}`);
  await sql.query('SELECT pg_reload_conf()');
}

/**
 * fence: true: before the catch-up, the master is made read-only (default_transaction_read_only
 * on, reloaded, and its client sessions ended, waiting for them to go, so that every new one
 * starts read-only): what the slave replays up to is then everything the master will take. After
 * the promotion, one writer is checked: the master read-only, the slave writable. The undo makes
 * the master writable again only if this step fenced it and the promotion never began (the
 * journal says so, not the slave, which may not answer); after that, a read-only master is the
 * point. A master already read-only for new sessions is left as it is, and so is its undo.
 */
function fenceSteps(pair: Pair, m: PgFacts, st: { promoting: boolean; fenced: boolean }): { before: Step[]; after: Step[] } {
  if (!pair.fence) return { before: [], after: [] };
  const readOnly = async (session: Session, server: Pair['master']): Promise<boolean> =>
    withClient(session, server, async (sql) => {
      const { rows } = await sql.query<{ ro: string; rec: boolean }>("SELECT current_setting('default_transaction_read_only') AS ro, pg_is_in_recovery() AS rec");
      return rows[0]!.ro === 'on' || rows[0]!.rec;
    });
  // PostgreSQL 14+ waits for each ended session to be gone (a commit in flight lands before the marker).
  const terminate = major(m) >= 14 ? 'pg_terminate_backend(pid, 10000)' : 'pg_terminate_backend(pid)';
  return {
    before: [
      {
        id: 'fence',
        side: 'master',
        title: 'make the master read-only',
        text: 'master: ALTER SYSTEM SET default_transaction_read_only = on; pg_reload_conf(); end its client sessions (pg_terminate_backend, waiting for them to go) so every new one is read-only',
        run: (session) =>
          withClient(session, pair.master, async (sql) => {
            const overrides = await fenceOverrides(sql);
            if (overrides.length > 0) throw new DbreplError('STEP', fenceOverrideMessage(pair, overrides));
            const { rows } = await sql.query<{ ro: string }>("SELECT setting AS ro FROM pg_settings WHERE name = 'default_transaction_read_only'");
            if (rows[0]?.ro !== 'on') {
              st.fenced = true;
              await session.checkpoint?.();
              await alterSystem(sql, 'SET default_transaction_read_only = on');
            }
            // dbrepl's own sessions (this run's lock on the master) stay: its login, its name.
            await sql.query(
              `SELECT ${terminate} FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND NOT (application_name LIKE 'dbrepl%' AND usename = current_user)`,
            );
          }),
        undo: {
          text: 'make the master writable again, unless the promotion had begun',
          run: async (session) => {
            if (st.promoting) return `${pair.master.ref} stays read-only: the promotion of ${pair.slave.ref} had begun, and one writer is what the fence is for`;
            if (!st.fenced) return '';
            await withClient(session, pair.master, (sql) => alterSystem(sql, 'RESET default_transaction_read_only'));
            st.fenced = false;
            return `${pair.master.ref} is writable again`;
          },
        },
      },
    ],
    after: [oneWriterStep(pair, readOnly, 'its promotion', ' (new sessions)')],
  };
}

/** Per-role or per-database settings of default_transaction_read_only: they outrank ALTER SYSTEM, so a fence would not hold for those sessions. */
export async function fenceOverrides(sql: Sql): Promise<string[]> {
  const { rows } = await sql.query<{ who: string }>(
    `SELECT coalesce('role ' || r.rolname, 'all roles') || ' in ' || coalesce('database ' || d.datname, 'every database') AS who
       FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase
      WHERE EXISTS (SELECT 1 FROM unnest(s.setconfig) c WHERE c LIKE 'default_transaction_read_only=%')`,
  );
  return rows.map((r) => r.who);
}

export const fenceOverrideMessage = (pair: Pair, overrides: string[]): string =>
  `fence: ${pair.master.ref} sets default_transaction_read_only per role or database (${overrides.join('; ')}), which outranks the fence: those sessions would stay writable. Remove it (ALTER ROLE/DATABASE ... RESET default_transaction_read_only) or take fence off the pair`;
