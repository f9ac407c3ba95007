import { DbreplError, messageOf } from '../../errors';
import { runScript, statOwner } from '../../hosts/commands';
import { copyTimeoutMs } from '../../hosts/limits';
import type { Pair, Server } from '../../model';
import { CopyProgress } from '../../util/progress';
import { humanBytes } from '../../util/bytes';
import { pollUntil, PollAbort } from '../../util/poll';
import { stepState } from '../engine';
import type { ActionPlan, ChangeAction, Logger, Session, Sides, Step } from '../engine';
import { Cmd, withClient } from './client';
import { readFacts, RedisFacts } from './inspect';
import { FORGET_COPY, LOCK_KEY } from './lock';
import { bufferWarnings, MAX_SYNC_RESTARTS, ownBase, preservedPath } from './state';
import { replicationTls, tlsFilesFor, writeTlsFiles } from '../tls';

/** The slave's settings the auth step changes, put back as they were by its undo. */
const UNDONE = ['masterauth', 'masteruser', 'replica-read-only', 'tls-replication', 'tls-ca-cert-file'];

/** Those settings as they are (a name this build does not know, such as TLS ones without TLS, is left out). */
async function settings(r: Cmd): Promise<Record<string, string>> {
  const flat = (await r.call('CONFIG', 'GET', ...UNDONE)) as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

export function plan(pair: Pair, action: ChangeAction, sides: Sides<RedisFacts>, stamp: string, state?: Record<string, unknown>): ActionPlan {
  return action === 'disable' ? disableSteps(pair, !sides.m) : enableSteps(pair, action, sides, stamp, state);
}

/** Full syncs are bounded by the dataset (at least 5 minutes, plus a minute per 1 GiB), or by the pair's copy_timeout. */
/** Full syncs cut and started over before the sync counts as failed. */

function syncTimeoutMs(bytes: number, overrideSeconds?: number): number {
  if (overrideSeconds !== undefined) return Math.max(1, overrideSeconds) * 1000;
  return 300_000 + Math.ceil(bytes / 2 ** 30) * 60_000;
}

/**
 * The login the slave uses at the master: the pair's replication user when the master has
 * that ACL user, else the master's own credentials from the file (requirepass or ACL user).
 */
export async function masterLogin(session: Session, pair: Pair): Promise<{ user?: string; password?: string }> {
  const wanted = pair.replication.user;
  if (wanted && wanted !== 'default') {
    const exists = await withClient(session, pair.master, async (r) => (await r.call('ACL', 'GETUSER', wanted).catch(() => null)) !== null);
    if (exists) return { user: wanted, password: pair.replication.password };
  }
  return { user: pair.master.user, password: pair.master.password };
}

async function rewrite(r: Cmd, facts: RedisFacts, log: Logger, server: Server): Promise<void> {
  if (facts.configFile) await r.call('CONFIG', 'REWRITE');
  else log.warn(`${server.ref} has no config file: the change holds until its next restart only`);
}

/**
 * A fresh RDB of the server's current dataset. BGSAVE works on a replica whose link is
 * down too (a replica refuses to serve SYNC then, so redis-cli --rdb is no option).
 */
async function snapshot(session: Session, server: Server): Promise<void> {
  await withClient(session, server, async (r) => {
    // rdb_saves counts finished snapshots (LASTSAVE has a one-second resolution).
    const saves = async (): Promise<{ n: number; running: boolean; ok: boolean }> => {
      const info = String(await r.call('INFO', 'persistence'));
      return {
        n: Number(/rdb_saves:(\d+)/.exec(info)?.[1] ?? -1),
        running: /rdb_bgsave_in_progress:1/.test(info),
        ok: /rdb_last_bgsave_status:ok/.test(info),
      };
    };
    let before = -1;
    await pollUntil(`a background save of ${server.ref} to start`, 120_000, async () => {
      const now = await saves();
      if (now.running) return undefined;
      before = now.n;
      try {
        await r.call('BGSAVE');
        return true;
      } catch (err) {
        // One started meanwhile: wait for it, then ask again.
        if (/in progress/i.test((err as Error).message)) return undefined;
        throw new PollAbort((err as Error).message);
      }
    });
    await pollUntil(`the background save of ${server.ref} to finish`, 600_000, async () => {
      const now = await saves();
      if (now.running || now.n <= before) return undefined;
      if (!now.ok) throw new PollAbort(`BGSAVE of ${server.ref} failed (see its log)`);
      return true;
    });
  });
}

/**
 * Enable and resync: keep the slave's dataset, authenticate, REPLICAOF, persist, wait for
 * the sync. Until the sync completes the slave keeps serving its own dataset; a failure
 * puts its replication settings back as they were (its dataset from before is at `preserved`).
 */
function enableSteps(pair: Pair, action: ChangeAction, { m, s }: Sides<RedisFacts>, stamp: string, state?: Record<string, unknown>): ActionPlan {
  const preserved = preservedPath(s.dir, s.dbfilename, stamp);
  const st = stepState(state, { auth: null as Record<string, string> | null, replicaofSet: false });
  // Over TLS: the slave's own TLS context (Redis has one) must trust the master; the master's CA
  // is installed for it unless it already has a CA of its own.
  const masterTls = replicationTls(pair.master);
  // The CA only: Redis's replication uses its own certificate, never the file's client key.
  const caFile = masterTls !== 'none' && pair.master.tls?.ca && !s.tlsCaCertFile ? { ...tlsFilesFor(ownBase(s.dir, s.dbfilename), pair.master), cert: undefined, key: undefined } : null;
  const tlsText = masterTls === 'none' ? '' : `; ${caFile ? `CONFIG SET tls-ca-cert-file ${caFile.ca}; ` : ''}CONFIG SET tls-replication yes (Redis checks the master's certificate chain, not its name)`;
  const before = s.role === 'master' ? 'REPLICAOF NO ONE' : `REPLICAOF ${s.masterHost} ${s.masterPort}`;
  const rewriteText = s.configFile ? 'CONFIG REWRITE' : 'CONFIG REWRITE impossible (the server has no config file: a restart would forget it is a slave)';
  const steps: Step[] = [
    {
      id: 'snapshot',
      side: 'slave',
      title: 'save its dataset (BGSAVE) and keep a copy',
      text: `slave: BGSAVE, then copy ${s.dir}/${s.dbfilename} to ${preserved} (kept), as the owner of ${s.dir}`,
      run: async (session) => {
        await snapshot(session, pair.slave);
        // The server writes its RDB on its own machine: copy it there, as the directory's owner,
        // to a new file, linked into place only if nothing is there (ln never replaces).
        const host = await session.hosts.forServer(pair.slave);
        const owner = await statOwner(host, s.dir);
        await runScript(
          host,
          `src=$1; out=$2
tmp=$(mktemp -- "$out.XXXXXXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cp -- "$src" "$tmp"
ln -- "$tmp" "$out"`,
          [`${s.dir}/${s.dbfilename}`, preserved],
          `keeping the RDB of ${pair.slave.ref}`,
          { as: { uid: owner.uid, gid: owner.gid }, timeoutMs: copyTimeoutMs(s.usedMemory) },
        );
      },
    },
    {
      id: 'auth',
      side: 'slave',
      title: 'authentication and read-only',
      text: `slave: CONFIG SET masterauth ***${pair.replication.user ? ' and masteruser (the pair\'s user when the master has that ACL user)' : ''}; CONFIG SET replica-read-only yes${tlsText}`,
      run: async (session) => {
        const login = await masterLogin(session, pair);
        await withClient(session, pair.slave, async (r) => {
          // As they are now, for the undo (masterauth stays in this closure, never in a report).
          st.auth = await settings(r);
          await session.checkpoint?.();
          await r.call('CONFIG', 'SET', 'masterauth', login.password ?? '');
          await r.call('CONFIG', 'SET', 'masteruser', login.user && login.user !== 'default' ? login.user : '');
          await r.call('CONFIG', 'SET', 'replica-read-only', 'yes');
          if (masterTls !== 'none') {
            if (caFile) {
              const host = await session.hosts.forServer(pair.slave);
              await writeTlsFiles(host, caFile, pair.master, await statOwner(host, s.dir));
              await r.call('CONFIG', 'SET', 'tls-ca-cert-file', caFile.ca!);
            }
            await r.call('CONFIG', 'SET', 'tls-replication', 'yes');
          }
        });
      },
      undo: {
        text: `${UNDONE.join(', ')} as they were; CONFIG REWRITE`,
        run: async (session) => {
          const before = st.auth;
          if (!before) return '';
          const refused: string[] = [];
          await withClient(session, pair.slave, async (r) => {
            // Only what changed, in UNDONE's order (tls-replication before its CA file), each on
            // its own, and persisted whatever a single setting did.
            const now = await settings(r);
            for (const k of UNDONE) {
              if (before[k] === undefined || now[k] === before[k]) continue;
              await r.call('CONFIG', 'SET', k, before[k]!).catch((e: unknown) => refused.push(`${k}: ${(e as Error).message}`));
            }
            await rewrite(r, s, session.log, pair.slave);
          });
          if (refused.length > 0) throw new DbreplError('STEP', `some settings could not be put back (${refused.join('; ')})`);
          return '';
        },
      },
    },
    {
      id: 'replicaof',
      side: 'slave',
      title: 'REPLICAOF the master',
      // A replica re-attached under a new replication ID cannot continue partially: a full sync follows.
      text: `slave: ${action === 'resync' ? 'REPLICAOF NO ONE, then ' : ''}REPLICAOF ${pair.master.host} ${pair.master.port}; ${rewriteText}`,
      run: (session) =>
        withClient(session, pair.slave, async (r) => {
          st.replicaofSet = true;
          await session.checkpoint?.();
          if (action === 'resync') await r.call('REPLICAOF', 'NO', 'ONE');
          await r.call('REPLICAOF', pair.master.host, String(pair.master.port));
          await rewrite(r, s, session.log, pair.slave);
        }),
      undo: {
        text: `${before}; CONFIG REWRITE`,
        run: async (session) => {
          if (!st.replicaofSet) return '';
          await withClient(session, pair.slave, async (r) => {
            if (s.role === 'master') await r.call('REPLICAOF', 'NO', 'ONE');
            else await r.call('REPLICAOF', s.masterHost ?? '', String(s.masterPort ?? 0));
            await rewrite(r, s, session.log, pair.slave);
          });
          return `its replication was put back as it was (${before}); its dataset from before is kept at ${preserved}`;
        },
      },
    },
    {
      id: 'sync',
      side: 'slave',
      title: 'wait until the initial sync has finished and the link is up',
      text: 'slave: wait until the full sync has finished and the link is up',
      run: async (session) => {
        // The master's dataset in memory is the estimate until the slave learns the RDB's size.
        const meter = new CopyProgress(`${pair.name}: full sync`, (l) => session.log.info(l), { total: m.usedMemory, estimated: true, everyMs: session.progressEveryMs });
        // A sync the master keeps cutting (its replica output buffer overflows under writes)
        // starts over, each time with a fork of the master: after a few, it is a failure, and
        // the undo detaches the slave, which stops the forks.
        const syncsAtStart = await withClient(session, pair.master, async (r) => (await readFacts(r)).syncFull);
        let restarts = 0;
        await pollUntil(`${pair.slave.ref} to finish its sync from ${pair.master.ref} (its previous dataset is at ${preserved})`, syncTimeoutMs(m.usedMemory, pair.copyTimeoutSeconds), async () => {
          const f = await withClient(session, pair.slave, readFacts);
          if (f.syncBytes) {
            if (f.syncBytes.total) meter.setTotal(f.syncBytes.total);
            meter.update(f.syncBytes.read);
          }
          if (f.role === 'slave' && f.linkUp && !f.syncInProgress) return true;
          const mf = await withClient(session, pair.master, readFacts);
          restarts = mf.syncFull - syncsAtStart - 1;
          if (restarts >= MAX_SYNC_RESTARTS) {
            const { hard, soft, seconds } = mf.replicaBufferLimit;
            throw new PollAbort(
              `the full sync of ${pair.slave.ref} started over ${restarts} times (${mf.syncFull - syncsAtStart} full syncs on ${pair.master.ref} since this one began, each a fork of the master): ` +
                `the master drops the replica when its output buffer passes client-output-buffer-limit replica (${hard ? humanBytes(hard) : 'no'} hard, ${soft ? `${humanBytes(soft)} for ${seconds} s` : 'no'} soft) under the writes of a ${humanBytes(mf.usedMemory)} sync; ` +
                `raise the limit on the master (CONFIG SET client-output-buffer-limit "replica <hard> <soft> <seconds>", and in its config file), then apply again`,
            );
          }
          return undefined;
        });
        meter.finish();
      },
    },
  ];
  const warnings = [...bufferWarnings(pair.master, m)];
  if (!s.configFile) warnings.push(`${pair.slave.ref} runs without a config file: CONFIG REWRITE is impossible, a restart makes it a master again`);
  return {
    steps,
    disruption: "slave's dataset is replaced by the master's (a full sync); master keeps serving (it forks for the RDB)",
    preserved,
    lockDir: ownBase(s.dir, s.dbfilename),
    warnings,
  };
}

/**
 * REPLICAOF NO ONE took effect but CONFIG REWRITE failed: the config file still says replicaof,
 * so a restart would make the server a replica again and a full sync would discard what it took
 * meanwhile. The disable fails: the replica is pointed back at its master (a partial resync, the
 * pair as it was) unless the master cannot be reached (a forced disable), and the error says what
 * a restart would do and what to fix.
 */
async function unpersistedDetach(r: Cmd, pair: Pair, before: RedisFacts, err: unknown, masterless: boolean): Promise<DbreplError> {
  const why = `${pair.slave.ref}: CONFIG REWRITE failed (${messageOf(err)}), so ${before.configFile} still makes it a replica of ${before.masterHost}:${before.masterPort}: a restart would make it one again and a full sync would discard every write it took meanwhile`;
  const fix = rewriteFix(before);
  if (masterless || !before.masterHost || !before.masterPort) {
    return new DbreplError('STEP', `${why}. It stays a master (in memory only, its master cannot be reached). ${fix}`);
  }
  try {
    await r.call('REPLICAOF', before.masterHost, String(before.masterPort));
  } catch (back) {
    return new DbreplError('STEP', `${why}; pointing it back at its master failed too (${messageOf(back)}): it is a master in memory only until it restarts. ${fix}`);
  }
  return new DbreplError('STEP', `${why}. The disable was not done: it replicates from ${pair.master.ref} again (a full sync); ${fix}`);
}

const rewriteFix = (f: RedisFacts): string =>
  `Make ${f.configFile} and its directory writable by the server (CONFIG REWRITE writes a new file there and renames it), then apply again`;

/** Disable: catch up to the master's offset, REPLICAOF NO ONE, persist (a master that cannot be reached: no catch-up). */
function disableSteps(pair: Pair, masterless: boolean): ActionPlan {
  let target = 0;
  const all: Step[] = [
    {
      id: 'note-offset',
      side: 'master',
      title: 'note its replication offset',
      text: 'master: note its replication offset (master_repl_offset)',
      run: async (session) => {
        target = await withClient(session, pair.master, async (r) => (await readFacts(r)).masterOffset);
      },
    },
    {
      id: 'catch-up',
      side: 'slave',
      title: 'wait until its offset has reached it',
      text: `slave: wait until its offset has reached it (at most ${pair.catchupTimeoutSeconds}s)`,
      run: async (session) => {
        let at = 0;
        try {
          await pollUntil(`${pair.slave.ref} to reach offset ${target}`, pair.catchupTimeoutSeconds * 1000, () =>
            withClient(session, pair.slave, async (r) => {
              const f = await readFacts(r);
              if (f.role === 'master') return true;
              at = f.replicaOffset ?? 0;
              return at >= target ? true : undefined;
            }),
          );
        } catch (err) {
          throw new DbreplError('STEP', `${(err as Error).message}; the slave is at ${at}, ${target - at} bytes behind; nothing was changed (raise catchup_timeout or repair the link, then apply again)`);
        }
      },
    },
    {
      id: 'detach',
      side: 'slave',
      title: 'REPLICAOF NO ONE and persist',
      text: `slave: CONFIG REWRITE (the file can be written); REPLICAOF NO ONE; CONFIG REWRITE; DEL ${LOCK_KEY} (the replicated copy of the master's lock)`,
      run: (session) =>
        withClient(session, pair.slave, async (r) => {
          const f = await readFacts(r);
          // The file first, while it still says replicaof: a server that cannot write it stops here, nothing changed.
          if (f.configFile) {
            await r.call('CONFIG', 'REWRITE').catch((err: unknown) => {
              throw new DbreplError('STEP', `${pair.slave.ref}: CONFIG REWRITE failed (${messageOf(err)}); nothing was changed, it still replicates: a disable must persist in ${f.configFile}, or a restart would make it a replica again and a full sync would discard every write it took meanwhile. ${rewriteFix(f)}`);
            });
          }
          await r.call('REPLICAOF', 'NO', 'ONE');
          try {
            await rewrite(r, f, session.log, pair.slave);
          } catch (err) {
            throw await unpersistedDetach(r, pair, f, err, masterless);
          }
          await r.call('EVAL', FORGET_COPY, 1, LOCK_KEY);
        }),
      // Past REPLICAOF NO ONE there is nothing to put back: a server that is a master in memory
      // but may still say replicaof in its file (killed before the second rewrite) is persisted.
      undo: {
        text: 'if it is a master now: CONFIG REWRITE (finish the detach)',
        run: (session) =>
          withClient(session, pair.slave, async (r) => {
            const f = await readFacts(r);
            if (f.role !== 'master' || !f.configFile) return '';
            await r.call('CONFIG', 'REWRITE');
            return `${pair.slave.ref} was a master already (REPLICAOF NO ONE done): its config file was rewritten to say so`;
          }),
      },
    },
  ];
  const steps = masterless ? all.filter((x) => x.id === 'detach') : all;
  const warnings = masterless ? [`${pair.master.ref} cannot be reached: the slave is detached without catching up`] : [];
  return { steps, disruption: 'slave becomes a standalone writable server; master keeps serving', preserved: null, lockDir: null, warnings };
}
