import { engineFor } from '../engines';
import type { ChangeAction, Logger, Session } from '../engines/engine';
import type { Owner } from '../hosts/run-state';
import { messageOf } from '../errors';
import type { Pair, Topology } from '../model';
import { Mode, prunePair } from '../plan/diff';
import type { DriftEntry, Plan, PlannedPair } from '../plan/types';
import { KeyedLock } from '../util/poll';
import { MasterLocks } from './locks';
import { masterlessPlans } from './checks';
import { PREFLIGHT_STEP, ProtocolContext, runAction } from './protocol';

export interface ApplyOptions {
  topology: Topology;
  session: Session;
  maxParallel: number;
  mode: Mode;
  stamp: string;
  /** Who a server is (one key for one server under several names). */
  identityOf: (server: Pair['master']) => string;
  owner: Owner;
  /** How long to wait for another run's lock (--lock-timeout). */
  lockTimeoutMs: number;
  /** The run's cancellation: pairs not started are not attempted, running ones are rolled back. */
  signal?: AbortSignal;
  force: boolean;
}

interface Job {
  key: string;
  pair: Pair;
  run: () => Promise<void>;
  /** Keys of jobs that must finish first. */
  after: string[];
  skip: (why: string) => void;
}

/**
 * Executes a plan: what the plan says is what runs. Pairs go in parallel (max-parallel),
 * except that a pair whose master is rebuilt by another pair (cascading) waits for it, and
 * is skipped if it failed. A pair the plan refused is not attempted and counts as failed.
 * A failed pair stops there, records which step failed and why, and the others go on.
 */
export async function applyPlan(plan: Plan, options: ApplyOptions): Promise<Plan> {
  const locks = new KeyedLock();
  const masterLocks = new MasterLocks(options.owner, options.lockTimeoutMs, options.session.log);
  const ctx = (pair: Pair): ProtocolContext => ({
    session: options.session,
    topology: options.topology,
    mode: options.mode,
    stamp: options.stamp,
    locks,
    masterLocks,
    owner: options.owner,
    lockTimeoutMs: options.lockTimeoutMs,
    signal: options.signal,
    force: options.force,
    masterKey: options.identityOf(pair.master),
  });
  const jobs: Job[] = [];
  const byName = new Map(options.topology.pairs.map((p) => [p.name, p]));

  for (const planned of plan.pairs) {
    const pair = byName.get(planned.name)!;
    // Nothing to do, unless a killed run left this slave half-done: then its rollback runs.
    if (planned.action === 'none' && !planned.interrupted) {
      planned.result = 'skipped';
      continue;
    }
    if (planned.error) {
      planned.result = 'failed';
      planned.error = `step "${PREFLIGHT_STEP}" failed: ${planned.error}`;
      continue;
    }
    jobs.push({
      key: pair.slave.ref,
      pair,
      after: [],
      run: () => runPair(pair, planned, ctx(pair), options.session.log),
      skip: (why) => {
        planned.result = 'skipped';
        planned.error = why;
      },
    });
  }
  for (const entry of plan.drift) {
    if (entry.action !== 'disable' || entry.error) {
      entry.result = entry.error ? 'failed' : 'skipped';
      continue;
    }
    const master = options.topology.servers.get(entry.master)!;
    const slave = options.topology.servers.get(entry.slave)!;
    const pair = prunePair(master, slave);
    jobs.push({
      key: slave.ref,
      pair,
      after: [],
      run: () => runDrift(pair, entry, ctx(pair), options.session.log),
      skip: (why) => {
        entry.result = 'skipped';
        entry.error = why;
      },
    });
  }
  // A pair whose master is the slave of another changing pair runs after it (by identity: names may differ).
  for (const job of jobs) {
    job.after = jobs.filter((j) => j !== job && options.identityOf(j.pair.slave) === options.identityOf(job.pair.master)).map((j) => j.key);
  }

  const done = new Map<string, Promise<boolean>>();
  const queue: Array<() => void> = [];
  let running = 0;
  const slot = async (): Promise<void> => {
    if (running < options.maxParallel) {
      running++;
      return;
    }
    await new Promise<void>((resolve) => queue.push(resolve));
    running++;
  };
  const release = (): void => {
    running--;
    queue.shift()?.();
  };

  const start = (job: Job): Promise<boolean> => {
    const existing = done.get(job.key);
    if (existing) return existing;
    const p = (async () => {
      const deps = await Promise.all(job.after.map((k) => start(jobs.find((j) => j.key === k)!)));
      if (deps.some((ok) => !ok)) {
        job.skip(`skipped: the pair that rebuilds its master ${job.pair.master.ref} did not finish`);
        return false;
      }
      await slot();
      try {
        if (options.signal?.aborted) {
          job.skip('not attempted: the run was cancelled');
          return false;
        }
        await job.run();
        return true;
      } catch {
        return false;
      } finally {
        release();
      }
    })();
    done.set(job.key, p);
    return p;
  };
  await Promise.all(jobs.map(start));
  return plan;
}

async function runPair(pair: Pair, planned: PlannedPair, ctx: ProtocolContext, log: Logger): Promise<void> {
  log.info(`${pair.name}: ${planned.action} (${planned.reason})`);
  try {
    const action = planned.action === 'none' ? null : (planned.action as ChangeAction);
    const { preserved, skipped, recovered } = await runAction(engineFor(pair.engine), pair, { action, preserved: planned.preserved, afresh: !!planned.locked_by, masterless: masterlessPlans.has(planned) }, ctx);
    if (recovered) planned.warnings.push(recovered);
    if (skipped) {
      // A rollback of a killed run's action, and nothing else to do: that rollback is what was done.
      planned.result = recovered ? 'done' : 'skipped';
      planned.error = recovered ? null : skipped;
      planned.preserved = null;
      log.info(`${pair.name}: ${skipped}`);
      return;
    }
    planned.preserved = preserved;
    planned.result = 'done';
    planned.error = null;
    log.info(`${pair.name}: ${planned.action} done`);
  } catch (err) {
    planned.result = 'failed';
    planned.error = messageOf(err);
    log.warn(`${pair.name}: ${planned.action} failed: ${planned.error}`);
    throw err;
  }
}

async function runDrift(pair: Pair, entry: DriftEntry, ctx: ProtocolContext, log: Logger): Promise<void> {
  try {
    const { skipped } = await runAction(engineFor(pair.engine), pair, { action: 'disable', preserved: null }, { ...ctx, mode: { kind: 'converge' } });
    entry.result = skipped ? 'skipped' : 'done';
    if (skipped) entry.error = skipped;
  } catch (err) {
    entry.result = 'failed';
    entry.error = messageOf(err);
    log.warn(`${entry.name}: prune failed: ${entry.error}`);
    throw err;
  }
}
