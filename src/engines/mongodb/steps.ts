import type { Document } from 'mongodb';
import { DbreplError, messageOf } from '../../errors';
import { pathExists, runChecked, statOwner } from '../../hosts/commands';
import { ownerOfDirectory } from '../../hosts/files';
import { copyTimeoutMs, SERVICE_TIMEOUT_MS } from '../../hosts/limits';
import type { Pair, Server } from '../../model';
import { pollUntil, sleep } from '../../util/poll';
import { stepState } from '../engine';
import type { ActionPlan, ChangeAction, Session, Sides, Step } from '../engine';
import { serviceArgv } from '../service';
import { codeOf, withClient } from './client';
import * as LOCK from './lock';
import { ConfigMember, memberAddress, MongoFacts } from './inspect';
import { optionsFile, readOptions, replSetNameIn, restoreOptionsText, writeReplSetName } from './options';
import { configEntry, dataDirOf, preservedPath, service, ST } from './state';

const START_TIMEOUT_MS = 120_000;
/** Reconfig refusals that mean "not now" (another reconfig in flight, the last one not committed): retried. */
const RETRY_CODES = new Set([109, 308, 11602]);

export function plan(pair: Pair, action: ChangeAction, sides: Sides<MongoFacts>, stamp: string, state?: Record<string, unknown>): ActionPlan {
  return action === 'disable' ? disableSteps(pair, sides, state) : enableSteps(pair, action, sides, stamp, state);
}

/** Voting members the set will have once the slave holds `votes` (the others as the master's config says). */
export function votersAfter(m: MongoFacts, pair: Pair, s: MongoFacts | null, votes: number): number {
  const entry = m.setName ? configEntry(m, pair.slave, s) : undefined;
  const others = m.configMembers.filter((c) => c !== entry && c.votes > 0).length;
  return (m.setName ? others : 1) + votes;
}

/**
 * Enable and resync: the way careful operators add a member.
 * 1. A master that runs standalone is restarted with replication.replSetName (its options
 *    file) and initiated as a one-member set.
 * 2. A member that votes is first made non-voting (one voting change), so a member in
 *    initial sync never counts towards a majority.
 * 3. The slave is stopped, its data directory moved aside (kept), replSetName set in its
 *    options file, and it is started empty.
 * 4. It is added with priority 0, votes 0 (a new member), and the run waits until initial
 *    sync is over and it is SECONDARY.
 * 5. It gets its vote and priority in a second reconfig (one voting change).
 * Every reconfig reads the current config from the primary and sends version + 1.
 */
function enableSteps(pair: Pair, _action: ChangeAction, { m, s }: Sides<MongoFacts>, stamp: string, state?: Record<string, unknown>): ActionPlan {
  const st = stepState(state, { masterOptions: null as string | null, slaveOptions: null as string | null, moved: false, adding: false, demoted: false, raised: false });
  const set = pair.master.replicaSet;
  const masterAddr = memberAddress(pair.master);
  const slaveAddr = memberAddress(pair.slave);
  const masterStandalone = !m.replSetName;
  const entry = m.setName ? configEntry(m, pair.slave, s) : undefined;
  const target = entry ? { priority: entry.priority, votes: entry.votes } : { priority: 1, votes: 1 };
  // The name the set knows the slave by (its entry, found by address or by `me`), or the file's address for a new member.
  const memberHost = entry?.host ?? slaveAddr;
  const dataDir = dataDirOf(pair.slave, s);
  const preserved = preservedPath(dataDir, stamp);
  const steps: Step[] = [];
  const warnings: string[] = [];

  if (masterStandalone) {
    steps.push({
      id: 'master-replset',
      side: 'master host',
      title: 'restart the master as a replica set member',
      text: `master: replication.replSetName: ${set} in ${optionsFile(pair.master, m)}; restart it (${service(pair.master).stop}; ${service(pair.master).start})`,
      run: async (session) => {
        // A set member already (another pair of this run, or a run before): nothing to do here.
        if (await answers(session, pair.master, (h) => !!h.setName || h.isreplicaset === true)) return;
        const host = await session.hosts.forServer(pair.master);
        const before = await readOptions(host, pair.master, m);
        // Journalled before the write: a run killed in between still puts it back.
        if (replSetNameIn(before) === null) {
          st.masterOptions = before;
          await session.checkpoint?.();
        }
        await writeReplSetName(host, pair.master, m, set, before);
        await restart(session, pair.master);
      },
      undo: {
        text: 'put the master\'s options file back and restart it standalone (only while it is its set\'s only member)',
        run: async (session) => {
          if (st.masterOptions === null) return '';
          const members = await withClient(session, pair.master, async (db) => ((await db.command({ replSetGetConfig: 1 })).config.members as Document[]).map((x) => String(x.host)), { quick: true }).catch(() => null);
          if (members && members.length > 1) {
            throw new DbreplError('STEP', `${pair.master.ref} has other members now (${members.join(', ')}): it is not restarted standalone, which would leave them without a primary; remove them first (or finish the enable)`);
          }
          const host = await session.hosts.forServer(pair.master);
          await restoreOptionsText(host, pair.master, m, st.masterOptions);
          await restart(session, pair.master, (h) => h.isWritablePrimary === true && !h.setName);
          return `${pair.master.ref} runs standalone again, as before`;
        },
      },
    });
    steps.push({
      id: 'initiate',
      side: 'master',
      title: 'initiate the replica set',
      text: `master: replSetInitiate {_id: "${set}", version: 1, members: [{_id: 0, host: "${masterAddr}"}]}; wait until it is PRIMARY`,
      run: async (session) => {
        await withClient(session, pair.master, async (db) => {
          const hello = await db.command({ hello: 1 });
          // Initiated already (a run killed after this command): nothing to send again.
          if (!hello.setName) await db.command({ replSetInitiate: { _id: set, version: 1, members: [{ _id: 0, host: masterAddr }] } });
        });
        await waitPrimary(session, pair.master);
      },
    });
    warnings.push(`${pair.master.ref} runs standalone: enabling restarts it with replication.replSetName ${set} and initiates a one-member replica set (its clients are disconnected during the restart)`);
  }

  if (entry && entry.votes > 0) {
    steps.push({
      id: 'demote',
      side: 'master',
      title: 'take the member\'s vote during its initial sync',
      text: `master: replSetReconfig (version + 1): member ${entry.host} priority 0, votes 0 (one voting change)`,
      run: async (session) => {
        // Journalled before it is sent: a reply lost after the config was installed still gets the vote back on rollback.
        st.demoted = true;
        await session.checkpoint?.();
        await reconfigure(session, pair, (ms) => patchMember(ms, entry.host, { priority: 0, votes: 0 }), 'demote');
      },
      undo: {
        text: `give ${entry.host} its vote back (priority ${entry.priority}, votes ${entry.votes})`,
        run: async (session) => {
          if (!st.demoted) return '';
          await reconfigure(session, pair, (ms) => patchMember(ms, entry.host, { priority: entry.priority, votes: entry.votes }), 'give the vote back');
          return `${entry.host} votes again`;
        },
      },
    });
  }

  steps.push({
    id: 'stop-slave',
    side: 'slave host',
    title: 'stop the slave',
    text: `slave: ${service(pair.slave).stop}`,
    run: (session) => stopServer(session, pair.slave),
    undo: startIfDown(pair.slave),
  });
  steps.push({
    id: 'move-aside',
    side: 'slave host',
    title: 'move the data directory aside',
    text: `slave: move ${dataDir} aside to ${preserved} (kept); create it empty`,
    run: async (session) => {
      const host = await session.hosts.forServer(pair.slave);
      const owner = await statOwner(host, dataDir);
      const parent = await ownerOfDirectory(host, dataDir);
      await runChecked(host, ['mv', '--no-target-directory', '--', dataDir, preserved], `moving ${dataDir} to ${preserved}`, { as: parent });
      st.moved = true;
      await session.checkpoint?.();
      await runChecked(host, ['mkdir', '-m', owner.mode, '--', dataDir], `creating ${dataDir}`, { as: parent });
      if (!parent) await runChecked(host, ['chown', '-h', `${owner.uid}:${owner.gid}`, '--', dataDir], `giving ${dataDir} to its owner`);
    },
    undo: {
      text: `put ${preserved} back at ${dataDir}`,
      run: async (session) => {
        const host = await session.hosts.forServer(pair.slave);
        if (!(await pathExists(host, preserved))) return '';
        await notVoting(session, pair, memberHost);
        // Whatever runs on the new directory stops first; its failure (nothing running) is expected.
        await host.run(serviceArgv(service(pair.slave).stop), { timeoutMs: SERVICE_TIMEOUT_MS });
        const parent = await ownerOfDirectory(host, dataDir);
        await runChecked(host, ['rm', '-rf', '--', dataDir], `removing the new ${dataDir}`, { as: parent });
        await runChecked(host, ['mv', '--no-target-directory', '--', preserved, dataDir], `moving ${preserved} back`, { as: parent });
        return `the slave's previous data was put back at ${dataDir}`;
      },
    },
  });
  if (s.replSetName !== set) {
    steps.push({
      id: 'slave-replset',
      side: 'slave host',
      title: 'set the replica-set name in its options file',
      text: `slave: replication.replSetName: ${set} in ${optionsFile(pair.slave, s)}`,
      run: async (session) => {
        const host = await session.hosts.forServer(pair.slave);
        const before = await readOptions(host, pair.slave, s);
        // Journalled before the write (the text as it was before any run touched it).
        if (replSetNameIn(before) !== set) {
          st.slaveOptions = before;
          await session.checkpoint?.();
        }
        await writeReplSetName(host, pair.slave, s, set, before);
      },
      undo: {
        text: 'put its options file back',
        run: async (session) => {
          if (st.slaveOptions === null) return '';
          await restoreOptionsText(await session.hosts.forServer(pair.slave), pair.slave, s, st.slaveOptions);
          return `${optionsFile(pair.slave, s)} is as it was`;
        },
      },
    });
  }
  steps.push({
    id: 'start-slave',
    side: 'slave host',
    title: 'start the slave empty',
    text: `slave: ${service(pair.slave).start} (empty, replica set ${set})`,
    run: (session) => startServer(session, pair.slave),
    undo: {
      text: 'stop the slave (unless it votes in the set)',
      run: async (session) => {
        await notVoting(session, pair, memberHost);
        await stopServer(session, pair.slave);
        return '';
      },
    },
  });
  if (!entry) {
    steps.push({
      id: 'add-member',
      side: 'master',
      title: 'add the slave to the set without a vote',
      text: `master: replSetReconfig (version + 1): add {host: "${slaveAddr}", priority: 0, votes: 0}`,
      run: async (session) => {
        st.adding = true;
        await session.checkpoint?.();
        await reconfigure(session, pair, (ms) => (ms.some((x) => sameHost(x.host, slaveAddr)) ? ms : [...ms, { _id: Math.max(-1, ...ms.map((x) => Number(x._id))) + 1, host: slaveAddr, priority: 0, votes: 0 }]), 'add');
      },
      undo: {
        text: `remove ${slaveAddr} from the set again`,
        run: async (session) => {
          if (!st.adding) return '';
          const removed = await reconfigure(session, pair, (ms) => ms.filter((x) => !sameHost(x.host, slaveAddr)), 'remove again', true);
          return removed ? `${slaveAddr} was removed from ${set} again` : '';
        },
      },
    });
  }
  const timeout = copyTimeoutMs(m.dataBytes, pair.copyTimeoutSeconds);
  steps.push({
    id: 'wait-secondary',
    side: 'master',
    title: 'wait until its initial sync is over',
    text: `master: wait until ${memberHost} is SECONDARY (initial sync; at most ${Math.round(timeout / 1000)}s)`,
    run: async (session) => {
      let last = '';
      await pollUntil(`${memberHost} to finish its initial sync`, timeout, async () => {
        const seen = await withClient(session, pair.master, async (db) => {
          const rs = await db.command({ replSetGetStatus: 1 });
          const me = (rs.members as Document[]).find((x) => sameHost(String(x.name), memberHost));
          const now = me ? String(me.stateStr) : 'not in the set';
          if (now !== last) session.log.info(`${pair.name}: ${memberHost} is ${now}`);
          last = now;
          return !!me && Number(me.state) === ST.SECONDARY && Number(me.health) === 1;
        });
        // And as the member says itself: the primary's view may be a heartbeat old (from before its restart).
        return seen && (await answers(session, pair.slave, (h) => h.secondary === true && !!h.setName)) ? true : undefined;
      }, 1000);
    },
  });
  if (target.votes > 0 || target.priority > 0) {
    steps.push({
      id: 'raise',
      side: 'master',
      title: 'give the slave its vote',
      text: `master: replSetReconfig (version + 1): member ${memberHost} priority ${target.priority}, votes ${target.votes} (one voting change)`,
      run: async (session) => {
        st.raised = true;
        await session.checkpoint?.();
        await reconfigure(session, pair, (ms) => patchMember(ms, memberHost, { priority: target.priority, votes: target.votes }), 'raise');
      },
      undo: {
        text: `take ${memberHost}'s vote again (priority 0, votes 0)`,
        run: async (session) => {
          if (!st.raised) return '';
          await reconfigure(session, pair, (ms) => patchMember(ms, memberHost, { priority: 0, votes: 0 }), 'take the vote again');
          return '';
        },
      },
    });
  }
  const voters = votersAfter(m, pair, s, target.votes);
  if (voters % 2 === 0) {
    warnings.push(`replica set ${set} will have ${voters} voting members, an even number: with half of them down it has no majority and no primary (add a voting member or an arbiter for an odd count)`);
  }
  return {
    steps,
    disruption: masterStandalone
      ? `master restarts as a replica set member (its clients are disconnected) and is initiated; slave's data is replaced by an initial sync`
      : `slave's data is replaced by an initial sync; master keeps serving (the set's config changes ${target.votes > 0 ? (entry && entry.votes > 0 ? 'three' : 'twice') : 'once'})`,
    preserved,
    lockDir: dataDir,
    warnings,
  };
}

/**
 * Disable: the member catches up with the primary's optime (catchup_timeout), is removed
 * from the set, its options file loses replication.replSetName and it restarts standalone,
 * keeping its data as a writable server. Removed from the set is the point of no return: a
 * later failure leaves it REMOVED, which the next run finishes (restart standalone).
 */
function disableSteps(pair: Pair, { m, s }: Sides<MongoFacts>, _state?: Record<string, unknown>): ActionPlan {
  const masterless = !m;
  const slaveAddr = memberAddress(pair.slave);
  const entry = m?.setName ? configEntry(m, pair.slave, s) : undefined;
  const steps: Step[] = [];
  // An active member catches up first; one restarted standalone by hand (still listed) is only removed.
  if (entry && !masterless && s.replSetName) {
    let goal: { t: number; i: number } | null = null;
    steps.push({
      id: 'catch-up',
      side: 'slave',
      title: 'wait until it has the primary\'s last write',
      text: `master and slave: note the primary's optime, wait until ${entry.host} has applied it (at most ${pair.catchupTimeoutSeconds}s)`,
      run: async (session) => {
        let behind = '';
        try {
          await pollUntil(`${entry.host} to reach the primary's optime`, pair.catchupTimeoutSeconds * 1000, () =>
            withClient(session, pair.master, async (db) => {
              const rs = await db.command({ replSetGetStatus: 1 });
              const members = rs.members as Document[];
              const self = members.find((x) => x.self === true);
              goal ??= tsOf(self?.optime?.ts);
              const me = members.find((x) => String(x.name).toLowerCase() === entry.host);
              const have = tsOf(me?.optime?.ts);
              behind = me ? `at ${have.t}.${have.i}, the primary was at ${goal.t}.${goal.i}` : 'not in the status';
              return have.t > goal.t || (have.t === goal.t && have.i >= goal.i) ? true : undefined;
            }),
          );
        } catch (err) {
          throw new DbreplError('STEP', `${messageOf(err)}; the member is ${behind}; nothing was changed (raise catchup_timeout or repair the link, then apply again)`);
        }
      },
    });
  }
  if (entry && !masterless) {
    steps.push({
      id: 'remove-member',
      side: 'master',
      title: 'remove the member from the set',
      text: `master: replSetReconfig (version + 1) without ${entry.host}${entry.votes > 0 ? ' (one voting change)' : ''}`,
      run: async (session) => void (await reconfigure(session, pair, (ms) => ms.filter((x) => !sameHost(x.host, entry.host)), 'remove')),
    });
  }
  if (s.replSetName) {
    steps.push({
      id: 'standalone-options',
      side: 'slave host',
      title: 'drop the replica-set name from its options file',
      text: `slave: remove replication.replSetName from ${optionsFile(pair.slave, s)}`,
      run: async (session) => void (await writeReplSetName(await session.hosts.forServer(pair.slave), pair.slave, s, null)),
    });
    steps.push({
      id: 'restart-standalone',
      side: 'slave host',
      title: 'restart it standalone',
      text: `slave: ${service(pair.slave).stop}; ${service(pair.slave).start}; wait until it takes writes as a standalone server; delete its replicated copy of the master's lock (${LOCK.DB}.${LOCK.COLL})`,
      run: async (session) => {
        await restart(session, pair.slave, (h) => h.isWritablePrimary === true && !h.setName && !h.isreplicaset);
        // The set's lock document came with the data: as a master of its own it would look held by that run.
        await withClient(session, pair.slave, (db) => db.command({ delete: LOCK.COLL, deletes: [{ q: { _id: LOCK.ID }, limit: 1 }] }, LOCK.DB));
      },
      // Killed or failed between the stop and the start: the server is started again (standalone, as its file now says).
      undo: startIfDown(pair.slave),
    });
  }
  const left = m && entry ? m.configMembers.filter((c) => c !== entry && c.votes > 0).length : 0;
  const evenLeft = left > 0 && left % 2 === 0 ? [`replica set ${pair.slave.replicaSet} keeps ${left} voting members, an even number: with half of them down it has no majority and no primary`] : [];
  return {
    steps,
    disruption: `slave leaves replica set ${pair.slave.replicaSet} and restarts as a standalone writable server (its clients are disconnected); the set keeps serving`,
    preserved: null,
    lockDir: null,
    warnings: [...evenLeft, ...(masterless ? [`${pair.master.ref} cannot be reached: ${slaveAddr} is restarted standalone without catching up or being removed from the set; remove it there (rs.remove) once the primary answers`] : [])],
  };
}

/** Hosts as the set lists them: case does not matter. */
const sameHost = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** The members with `patch` on `host`'s entry; a host the config does not list is an error, not a silent no-op. */
function patchMember(ms: ConfigMember[], host: string, patch: Partial<ConfigMember>): Document[] {
  if (!ms.some((x) => sameHost(x.host, host))) throw new DbreplError('STEP', `${host} is not in the set's config (it changed since the plan)`);
  return ms.map((x) => (sameHost(x.host, host) ? { ...x, ...patch } : x));
}

/**
 * Before an undo stops the slave or replaces its data: it must not be the primary, nor a
 * voting member (an undo of its vote that failed): then it is left as it is, and the
 * journal keeps the rollback for the next run.
 */
async function notVoting(session: Session, pair: Pair, host: string): Promise<void> {
  const hello = await withClient(session, pair.slave, (db) => db.command({ hello: 1 }), { quick: true }).catch(() => null);
  if (hello?.isWritablePrimary === true && hello.setName) throw new DbreplError('STEP', `${pair.slave.ref} is the primary of ${hello.setName}: it is not stopped nor its data replaced`);
  const members = await withClient(session, pair.master, async (db) => (await db.command({ replSetGetConfig: 1 })).config.members as ConfigMember[], { quick: true }).catch(() => null);
  const me = members?.find((x) => sameHost(x.host, host));
  if (me && Number(me.votes) > 0) throw new DbreplError('STEP', `${host} votes in the set (votes ${me.votes}): it is not stopped nor its data replaced; take its vote first, then apply again`);
}

const tsOf = (ts: unknown): { t: number; i: number } => {
  const x = ts as { t?: number; i?: number; high?: number; low?: number } | undefined;
  return { t: Number(x?.t ?? x?.high ?? 0), i: Number(x?.i ?? x?.low ?? 0) };
};

/**
 * One reconfig on the primary: the current config read there, `change` applied to its
 * members, version + 1. Refusals that mean "not now" are retried (a config not committed yet,
 * another reconfig in flight); any other is the step's failure with the server's code. With
 * `onlyIfChanged`, a change that leaves the members as they are sends nothing (false).
 */
export async function reconfigure(session: Session, pair: Pair, change: (members: ConfigMember[]) => Document[], what: string, onlyIfChanged = false): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withClient(session, pair.master, async (db) => {
        const { config } = await db.command({ replSetGetConfig: 1 });
        const members = change(config.members as ConfigMember[]);
        if (onlyIfChanged && JSON.stringify(members) === JSON.stringify(config.members)) return false;
        const next = { ...config, version: Number(config.version) + 1, members };
        session.log.info(`${pair.name}: replSetReconfig (${what}): version ${next.version}, members ${members.map((x) => `${x.host} p${x.priority ?? 1} v${x.votes ?? 1}`).join(', ')}`);
        await db.command({ replSetReconfig: next, maxTimeMS: 60_000 });
        return true;
      });
    } catch (err) {
      if (attempt >= 10 || !RETRY_CODES.has(codeOf(err) ?? -1)) throw err;
      session.log.info(`${pair.name}: replSetReconfig (${what}) not now (${messageOf(err)}): again in 1 s`);
      await sleep(1000);
    }
  }
}

async function answers(session: Session, server: Server, pred: (hello: Document) => boolean = () => true): Promise<boolean> {
  return withClient(session, server, async (db) => pred(await db.command({ hello: 1 })), { quick: true }).catch(() => false);
}

async function stopServer(session: Session, server: Server): Promise<void> {
  const host = await session.hosts.forServer(server);
  await runChecked(host, serviceArgv(service(server).stop), `stopping ${server.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
  await pollUntil(`${server.ref} to stop answering`, START_TIMEOUT_MS, async () => ((await answers(session, server)) ? undefined : true), 500);
}

async function startServer(session: Session, server: Server, pred?: (hello: Document) => boolean): Promise<void> {
  const host = await session.hosts.forServer(server);
  await runChecked(host, serviceArgv(service(server).start), `starting ${server.ref}`, { timeoutMs: SERVICE_TIMEOUT_MS });
  await pollUntil(`${server.ref} to answer`, START_TIMEOUT_MS, async () => ((await answers(session, server, pred)) ? true : undefined), 500);
}

/** An undo: the server started again if it does not answer (as its options file says now). */
function startIfDown(server: Server): NonNullable<Step['undo']> {
  return {
    text: `start ${server.ref} if it does not answer`,
    run: async (session) => {
      if (await answers(session, server)) return '';
      await startServer(session, server);
      return `${server.ref} was started again`;
    },
  };
}

async function restart(session: Session, server: Server, pred?: (hello: Document) => boolean): Promise<void> {
  await stopServer(session, server);
  await startServer(session, server, pred);
}

async function waitPrimary(session: Session, server: Server): Promise<void> {
  await pollUntil(`${server.ref} to become PRIMARY`, START_TIMEOUT_MS, async () => ((await answers(session, server, (h) => h.isWritablePrimary === true && !!h.setName)) ? true : undefined), 500);
}
