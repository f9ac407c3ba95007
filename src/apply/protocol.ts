import type { ActionPlan, ChangeAction, Engine, Session, Sides, Step } from '../engines/engine';
import { stepText } from '../engines/engine';
import { DbreplError, StepError, messageOf } from '../errors';
import { keepRebuildLock, releaseRebuildLock, takeRebuildLock } from '../hosts/rebuild';
import type { Pair } from '../model';
import { decide, Mode } from '../plan/diff';
import type { KeyedLock } from '../util/poll';
import { checkAction } from './checks';

export interface ProtocolContext {
  session: Session;
  mode: Mode;
  /** The plan's stamp: the preserved path apply uses is the one the plan named. */
  stamp: string;
  /** Serialises work on one master (two slaves configuring it at once). */
  locks: KeyedLock;
  /** The master's identity (one key for one server under several names); default its reference. */
  masterKey?: string;
}

export interface Planned {
  action: ChangeAction;
  preserved: string | null;
  /** The slave's directory the plan locked on (the rebuild lock sits next to it). */
  lockDir: string | null;
}

export const PREFLIGHT_STEP = 'preflight: checks before any change';

/**
 * Runs one pair's action under the one protocol every engine shares: the rebuild lock
 * first (enable/resync); then both sides inspected again and the action decided again,
 * so nothing acts on a plan made before the lock; every check again; then the steps, each
 * timed, master-side ones under the master's lock; on a failure, the undo of every step
 * that started, newest first, and an error naming the step, its cause and what was undone.
 */
export async function runAction(engine: Engine, pair: Pair, planned: Planned, ctx: ProtocolContext): Promise<{ preserved: string | null; skipped?: string }> {
  const { session } = ctx;
  const log = (m: string): void => session.log.info(`${pair.name}: ${m}`);
  // Where its commands will run, said once (the runner itself, or which SSH host).
  const [mh, sh] = await Promise.all([session.hosts.forServer(pair.master), session.hosts.forServer(pair.slave)]).catch(() => [null, null]);
  if (mh && sh) log(`master ${pair.master.ref} on ${mh.label}; slave ${pair.slave.ref} on ${sh.label}`);
  let lock: string | null = null;
  let masterKey: string | undefined;
  const slaveHost = planned.lockDir ? await session.hosts.forServer(pair.slave) : null;
  if (slaveHost && planned.lockDir) {
    lock = await run(log, 'slave host: take the rebuild lock', () =>
      takeRebuildLock(slaveHost, pair.slave, planned.lockDir!, { pair: pair.name, action: planned.action, preserved: planned.preserved ?? '', pid: String(process.pid) }),
    );
  }
  try {
    const { plan, skipped } = await run(log, PREFLIGHT_STEP, async () => {
      const sides = await inspectBoth(engine, pair, session);
      const live = engine.pairState(pair, { ok: true, server: pair.master, facts: sides.m }, { ok: true, server: pair.slave, facts: sides.s });
      const now = decide(pair, live, ctx.mode);
      // Already as the file wants it (another run, or the link came back): nothing to do.
      if (now.action === 'none') return { plan: null, skipped: `not attempted: when the lock was taken the pair was already as desired (${now.reason})` };
      if (now.action !== planned.action) {
        throw new DbreplError('STEP', `the pair changed since the plan (now ${live.state}: ${now.action}, ${now.reason}); nothing was changed: plan again`);
      }
      masterKey = engine.identity(sides.m).key;
      const fresh = engine.plan(pair, planned.action, sides, ctx.stamp);
      if (fresh.preserved !== planned.preserved || fresh.lockDir !== planned.lockDir) {
        throw new DbreplError('STEP', `the slave's data directory changed since the plan (${fresh.lockDir} instead of ${planned.lockDir}); nothing was changed: plan again`);
      }
      const findings = await checkAction(engine, pair, sides, { action: planned.action, plan: fresh }, session, 'apply');
      for (const w of findings.filter((f) => f.level === 'warning')) session.log.warn(`${pair.name}: ${w.message}`);
      const errors = findings.filter((f) => f.level === 'error').map((f) => f.message);
      if (errors.length > 0) throw new DbreplError('STEP', errors.join('; '));
      return { plan: fresh, skipped: undefined };
    });
    if (!plan) return { preserved: null, skipped };
    const outcome = await runSteps(plan, pair, { ...ctx, masterKey }, log);
    if (outcome.failed) {
      if (outcome.undoFailed && slaveHost && lock) {
        // The lock is the marker of a slave left half-done: it stays, saying why, and stops every later rebuild.
        const kept = `${outcome.failed.message}; the rebuild lock ${lock} is kept: check ${pair.slave.ref}${plan.preserved ? ` (its previous data is at ${plan.preserved})` : ''}, then remove the lock`;
        await keepRebuildLock(slaveHost, lock, outcome.failed.message).catch(() => undefined);
        lock = null;
        throw new StepError(outcome.failed.step, kept.replace(/^step "[^"]*" failed: /, ''), { cause: outcome.failed });
      }
      throw outcome.failed;
    }
    return { preserved: plan.preserved };
  } finally {
    if (slaveHost && lock) await releaseRebuildLock(slaveHost, lock);
  }
}

async function inspectBoth(engine: Engine, pair: Pair, session: Session): Promise<Sides<unknown>> {
  const [m, s] = await Promise.all([engine.inspect(pair.master, session), engine.inspect(pair.slave, session)]);
  return { m, s };
}

/** Runs the steps; on a failure, undoes what started and returns the error (and whether an undo failed too). */
async function runSteps(plan: ActionPlan, pair: Pair, ctx: ProtocolContext, log: (m: string) => void): Promise<{ failed: StepError | null; undoFailed: boolean }> {
  const started: Step[] = [];
  // Work on one master is serialised under its identity, whatever name each pair gives it.
  const masterKey = ctx.masterKey ?? pair.master.ref;
  for (const step of plan.steps) {
    started.push(step);
    try {
      await run(log, stepText(step), () => (step.side.startsWith('master') ? ctx.locks.run(masterKey, () => step.run(ctx.session)) : step.run(ctx.session)));
    } catch (err) {
      const undo = await rollback(started, ctx.session, log);
      const cause = err instanceof StepError ? messageOf(err.cause ?? err) : messageOf(err);
      return { failed: new StepError(`${step.side}: ${step.title}`, [cause, ...undo.said].join('; '), { cause: err }), undoFailed: undo.failed };
    }
  }
  return { failed: null, undoFailed: false };
}

/** Undoes every step that started, newest first; each undo on its own, so one failing does not stop the others. */
async function rollback(started: Step[], session: Session, log: (m: string) => void): Promise<{ said: string[]; failed: boolean }> {
  const said: string[] = [];
  let failed = false;
  for (const step of [...started].reverse()) {
    if (!step.undo) continue;
    log(`undo: ${step.undo.text}`);
    try {
      const what = await step.undo.run(session);
      if (what) said.push(what);
    } catch (err) {
      failed = true;
      said.push(`undoing "${step.side}: ${step.title}" failed (${messageOf(err)})`);
    }
  }
  return { said, failed };
}

/** Runs one named piece of work, logging it and its duration; a failure becomes a StepError naming it. */
async function run<T>(log: (m: string) => void, name: string, fn: () => Promise<T>): Promise<T> {
  log(name);
  const t0 = Date.now();
  try {
    const out = await fn();
    log(`  done in ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    return out;
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new StepError(name, messageOf(err), { cause: err });
  }
}
