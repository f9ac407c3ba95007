import { engineFor, unsupportedMessage } from '../engines';
import type { ApplyContext, Logger } from '../engines/engine';
import { StepError, messageOf } from '../errors';
import type { HostProvider } from '../hosts/host';
import { prunePair } from '../plan/diff';
import type { DriftEntry, Plan, PlannedPair } from '../plan/types';
import type { Pair, Topology } from '../topology';
import { KeyedLock } from '../util/poll';

export interface ApplyOptions {
  topology: Topology;
  hosts: HostProvider;
  log: Logger;
  maxParallel: number;
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
 * is skipped if it failed. Work on one master is serialised by a lock. A failed pair
 * stops there, records which step failed and why, and the others go on.
 */
export async function applyPlan(plan: Plan, options: ApplyOptions): Promise<Plan> {
  const locks = new KeyedLock();
  const jobs: Job[] = [];
  const byName = new Map(options.topology.pairs.map((p) => [p.name, p]));

  for (const planned of plan.pairs) {
    const pair = byName.get(planned.name)!;
    if (planned.action === 'none') {
      planned.result = 'skipped';
      continue;
    }
    jobs.push({
      key: pair.slave.ref,
      pair,
      after: [],
      run: () => runPair(pair, planned, options, locks),
      skip: (why) => {
        planned.result = 'skipped';
        planned.error = why;
      },
    });
  }
  for (const entry of plan.drift) {
    if (entry.action !== 'disable') {
      entry.result = 'skipped';
      continue;
    }
    const master = options.topology.servers.get(entry.master)!;
    const slave = options.topology.servers.get(entry.slave)!;
    const pair = prunePair(master, slave);
    jobs.push({ key: slave.ref, pair, after: [], run: () => runDrift(pair, entry, options, locks), skip: (why) => { entry.result = 'skipped'; entry.error = why; } });
  }
  // A pair whose master is the slave of another changing pair runs after it.
  for (const job of jobs) {
    job.after = jobs.filter((j) => j !== job && j.pair.slave.ref === job.pair.master.ref).map((j) => j.key);
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

function context(options: ApplyOptions, locks: KeyedLock): ApplyContext {
  return { hosts: options.hosts, log: options.log, withLock: (key, fn) => locks.run(key, fn) };
}

async function runPair(pair: Pair, planned: PlannedPair, options: ApplyOptions, locks: KeyedLock): Promise<void> {
  const engine = engineFor(pair.engine);
  options.log.info(`${pair.name}: ${planned.action} (${planned.reason})`);
  try {
    if (!engine) throw new StepError('start', unsupportedMessage(pair.engine));
    if (planned.action === 'disable') {
      await engine.disable(pair, planned, context(options, locks));
    } else {
      const { preserved } = await engine.enable(pair, planned, context(options, locks));
      planned.preserved = preserved;
    }
    planned.result = 'done';
    planned.error = null;
    options.log.info(`${pair.name}: ${planned.action} done`);
  } catch (err) {
    planned.result = 'failed';
    planned.error = messageOf(err);
    options.log.warn(`${pair.name}: ${planned.action} failed: ${planned.error}`);
    throw err;
  }
}

async function runDrift(pair: Pair, entry: DriftEntry, options: ApplyOptions, locks: KeyedLock): Promise<void> {
  const engine = engineFor(pair.engine)!;
  const planned: PlannedPair = {
    name: entry.name, engine: entry.engine, master: entry.master, slave: entry.slave, desired: 'disabled', live: entry.live,
    action: 'disable', reason: entry.reason, steps: entry.steps, disruption: null, preserved: null, warnings: [], lag_seconds: null, lag_bytes: null, error: null,
  };
  try {
    await engine.disable(pair, planned, context(options, locks));
    entry.result = 'done';
  } catch (err) {
    entry.result = 'failed';
    entry.error = messageOf(err);
    options.log.warn(`${entry.name}: prune failed: ${entry.error}`);
    throw err;
  }
}
