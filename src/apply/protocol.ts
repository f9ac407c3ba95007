import type { ActionPlan, ChangeAction, Engine, Session, Sides, Step } from '../engines/engine';
import { stepText } from '../engines/engine';
import { CancelledError, ConnectionError, DbreplError, StepError, messageOf } from '../errors';
import type { Owner } from '../hosts/run-state';
import type { Pair, Topology } from '../model';
import { decide, Mode, prunePair } from '../plan/diff';
import { underSignal, unstoppable } from '../util/cancel';
import type { KeyedLock } from '../util/poll';
import { checkAction, settle } from './checks';
import { describeInterrupted, Interrupted, JournalRecord } from './journal';
import { MasterLocks, SlaveLock } from './locks';

export interface ProtocolContext {
  session: Session;
  topology: Topology;
  mode: Mode;
  /** The plan's stamp: the preserved path apply uses is the one the plan named. */
  stamp: string;
  /** Serialises this run's work on one master (two slaves configuring it at once). */
  locks: KeyedLock;
  /** Other runs: the lock on each master, held on the master itself. */
  masterLocks: MasterLocks;
  owner: Owner;
  lockTimeoutMs: number;
  /** The run's cancellation (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** --force: refusals that may be overridden are warnings. */
  force: boolean;
  /** The master's identity (one key for one server under several names); default its reference. */
  masterKey?: string;
}

export interface Planned {
  /** What the plan said; null: only the rollback of an interrupted action (the pair is otherwise as desired). */
  action: ChangeAction | null;
  preserved: string | null;
  /** The plan could not see the pair (another run held it): the action is decided once the lock is taken. */
  afresh?: boolean;
  /** A disable the plan made without its master (unreachable, --force): only then may apply go ahead without it. */
  masterless?: boolean;
}

export const PREFLIGHT_STEP = 'preflight: checks before any change';

/**
 * Runs one pair's action under the one protocol every engine shares:
 * 1. the slave's lock on its host (waiting up to the lock timeout; a gone holder's lock is
 *    taken over), then the master's lock on the master;
 * 2. an action a killed run left half-done (its journal) is rolled back first;
 * 3. both sides inspected again and the action decided again, so nothing acts on a plan
 *    made before the locks; every check again;
 * 4. the steps, each journalled on the slave's host as it starts and ends (with the state
 *    its undo needs), master-side ones under this run's lock on the master;
 * 5. on a failure, a cancellation or a lost lock: the undo of every step that started,
 *    newest first, journalled too; an undo that fails leaves the lock and journal for the
 *    next run, which tries the rollback again.
 */
export async function runAction(engine: Engine, pair: Pair, planned: Planned, ctx: ProtocolContext): Promise<{ preserved: string | null; skipped?: string; recovered?: string }> {
  const { session } = ctx;
  const log = (m: string): void => session.log.info(`${pair.name}: ${m}`);
  const [mh, sh] = await Promise.all([session.hosts.forServer(pair.master), session.hosts.forServer(pair.slave)]);
  log(`master ${pair.master.ref} on ${mh.label}; slave ${pair.slave.ref} on ${sh.label}`);

  const { lock, interrupted } = await run(log, 'slave host: take the lock of the slave', () => underSignal(ctx.signal, () => SlaveLock.take(sh, pair.slave, ctx.owner, ctx.lockTimeoutMs, log)));
  let keep = false;
  let releaseMaster: (() => Promise<void>) | undefined;
  try {
    releaseMaster = await run(log, 'master: take the lock of the master', () =>
      underSignal(ctx.signal, () =>
        ctx.masterLocks.take(engine, pair.master, ctx.masterKey ?? pair.master.ref, session).catch((err: unknown) => {
          // A forced disable goes ahead without its master: there is no lock to take on it.
          if (!(planned.masterless && err instanceof ConnectionError)) throw err;
          log(`master cannot be reached (${messageOf(err)}): no lock on it (forced disable)`);
          return async () => undefined;
        }),
      ),
    );
    let recovered: string | undefined;
    if (interrupted) {
      const outcome = await recover(engine, pair, interrupted, lock, ctx, log);
      if (outcome.failed) {
        keep = true;
        throw new DbreplError('STEP', outcome.said);
      }
      recovered = outcome.said;
    }
    if (planned.action === null && !recovered) return { preserved: null, skipped: 'not attempted: nothing to do' };
    if (ctx.signal?.aborted) throw new CancelledError('not started: the run was cancelled');

    const state: Record<string, unknown> = {};
    const { plan, sides, action, skipped } = await run(log, PREFLIGHT_STEP, async () => {
      const sides = await underSignal(ctx.signal, () => inspectBoth(engine, pair, session, planned.masterless === true));
      const masterless = sides.m === null;
      const live = engine.pairState(
        pair,
        masterless ? { ok: false, server: pair.master, error: 'cannot be reached' } : { ok: true, server: pair.master, facts: sides.m },
        { ok: true, server: pair.slave, facts: sides.s },
      );
      const now = decide(pair, live, ctx.mode);
      // Already as the file wants it (another run, the link came back, or the rollback above): nothing to do.
      if (now.action === 'none' && live.state === 'unreachable') throw new DbreplError('STEP', `${live.error ?? 'a side cannot be inspected'}: nothing was changed`);
      if (now.action === 'none') return { plan: null, sides, action: null, skipped: `not attempted: when the lock was taken the pair was already as desired (${now.reason})` };
      // After a rollback the pair is what it was before the killed run: its action is decided afresh.
      if (planned.action !== null && now.action !== planned.action && !recovered && !planned.afresh) {
        throw new DbreplError('STEP', `the pair changed since the plan (now ${live.state}: ${now.action}, ${now.reason}); nothing was changed: plan again`);
      }
      const fresh = engine.plan(pair, now.action, sides, ctx.stamp, state);
      if (planned.action === now.action && fresh.preserved !== planned.preserved) {
        throw new DbreplError('STEP', `the slave's data directory changed since the plan (${fresh.preserved} instead of ${planned.preserved}); nothing was changed: plan again`);
      }
      // A forced disable without its master: the refusal it overrode was the check (nothing here compares the two sides).
      const findings = masterless ? [] : settle(await checkAction(engine, pair, sides, { action: now.action, plan: fresh }, { ...session, recheck: true }), ctx.force);
      for (const w of findings.filter((f) => f.level === 'warning')) session.log.warn(`${pair.name}: ${w.message}`);
      const errors = findings.filter((f) => f.level === 'error').map((f) => f.message);
      if (errors.length > 0) throw new DbreplError('STEP', errors.join('; '));
      return { plan: fresh, sides, action: now.action, skipped: undefined };
    });
    if (!plan || !action) return { preserved: null, skipped, recovered };
    await lock.append({
      t: 'begin',
      pair: pair.name,
      action,
      stamp: ctx.stamp,
      master: pair.master.ref,
      slave: pair.slave.ref,
      sides,
      steps: plan.steps.map((s) => ({ id: s.id, text: stepText(s) })),
      run: ctx.owner.run,
      at: new Date().toISOString(),
      fence: pair.fence,
    });
    const journalled: Session = { ...session, checkpoint: () => lock.append({ t: 'state', state }) };
    const outcome = await runSteps(plan, pair, { ...ctx, session: journalled }, lock, state, log);
    if (outcome.failed) {
      if (outcome.undoFailed) {
        keep = true;
        throw new StepError(outcome.failed.step, `${outcome.failed.message.replace(/^step "[^"]*" failed: /, '')}; the lock and journal of ${pair.slave.ref} stay in ${lock.dir} on ${lock.host.label}: the next run tries the rollback again${plan.preserved ? ` (the slave's previous data is at ${plan.preserved})` : ''}`, { cause: outcome.failed });
      }
      throw outcome.failed;
    }
    await lock.append({ t: 'end', outcome: 'done', at: new Date().toISOString() });
    return { preserved: plan.preserved, recovered };
  } finally {
    await unstoppable(async () => {
      if (releaseMaster) await releaseMaster();
      if (keep) await lock.abandon('an undo failed');
      else await lock.release();
    });
  }
}

/** Both sides; with `masterMayBeDown` (a disable planned without its master, forced), a master that cannot be reached is null. */
async function inspectBoth(engine: Engine, pair: Pair, session: Session, masterMayBeDown = false): Promise<Sides<unknown>> {
  const [m, s] = await Promise.all([
    engine.inspect(pair.master, session).catch((err: unknown) => (masterMayBeDown && err instanceof ConnectionError ? null : Promise.reject(err))),
    engine.inspect(pair.slave, session),
  ]);
  return { m, s };
}

/**
 * Rolls back an action a killed run left half-done, from its journal: the same step list
 * built again from the facts it was planned on and the state its steps journalled, and the
 * undo of every step that started (and was not undone yet), newest first. An action whose
 * every step finished is left as it is.
 */
async function recover(engine: Engine, pair: Pair, i: Interrupted, lock: SlaveLock, ctx: ProtocolContext, log: (m: string) => void): Promise<{ said: string; failed: boolean }> {
  const what = describeInterrupted(i);
  log(`found ${what}`);
  if (i.complete) {
    await lock.append({ t: 'end', outcome: 'done', at: new Date().toISOString() });
    await lock.clearJournal();
    return { said: `${what}: every step had finished; nothing to roll back`, failed: false };
  }
  const master = ctx.topology.servers.get(i.master);
  const slave = ctx.topology.servers.get(i.slave);
  if (!master || !slave) {
    return { said: `${what}; its master ${i.master} or slave ${i.slave} is no longer in the file, so it cannot be rolled back from here: restore the file, or roll it back by hand and remove ${lock.dir}/lock on ${lock.host.label}`, failed: true };
  }
  // The step list as that run built it: its pair's fence from the journal, not from this run's file or flags.
  const journalPair = { ...(pair.master.ref === i.master && pair.slave.ref === i.slave ? pair : prunePair(master, slave)), fence: i.fence };
  const plan = engine.plan(journalPair, i.action, i.sides, i.stamp, i.state);
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  const pending = i.started.filter((id) => !i.undone.has(id));
  const unknown = pending.filter((id) => !byId.has(id));
  if (unknown.length > 0) {
    return { said: `${what}; its steps ${unknown.join(', ')} are not in the step list this version builds, so it cannot be rolled back from here: roll it back by hand (the journal in ${lock.dir} on ${lock.host.label} says what ran) and remove ${lock.dir}/lock`, failed: true };
  }
  const started = pending.map((id) => byId.get(id)!);
  const session: Session = { ...ctx.session, checkpoint: () => lock.append({ t: 'state', state: i.state }) };
  const undo = await rollback(started, session, lock, (m) => log(`rollback of the interrupted ${i.action}: ${m}`));
  await lock.append({ t: 'end', outcome: undo.failed ? 'undo-failed' : 'rolled-back', at: new Date().toISOString() });
  if (undo.failed) return { said: `${what}; rolling it back failed: ${undo.said.join('; ')}; the lock and journal stay in ${lock.dir} on ${lock.host.label} and the next run tries again`, failed: true };
  await lock.clearJournal();
  return { said: `rolled back the ${what}${undo.said.length > 0 ? `: ${undo.said.join('; ')}` : ''}`, failed: false };
}

/** Runs the steps; on a failure, a cancellation or a lost lock, undoes what started and returns the error (and whether an undo failed too). */
async function runSteps(plan: ActionPlan, pair: Pair, ctx: ProtocolContext, lock: SlaveLock, state: Record<string, unknown>, log: (m: string) => void): Promise<{ failed: StepError | null; undoFailed: boolean }> {
  const started: Step[] = [];
  const masterKey = ctx.masterKey ?? pair.master.ref;
  // The run's cancellation, and this lock lost to another run: either stops the steps.
  const stop = ctx.signal ? AbortSignal.any([ctx.signal, lock.lostSignal]) : lock.lostSignal;
  // The previous step's state and end are written with the next step's start: one journal write per step.
  let pending: JournalRecord[] = [];
  for (const step of plan.steps) {
    try {
      if (stop.aborted) throw new CancelledError(lock.lost ? `lost the lock: ${lock.lost}` : 'the run was cancelled');
      started.push(step);
      await lock.append(...pending, { t: 'step', id: step.id, phase: 'start', at: new Date().toISOString() });
      pending = [];
      await run(log, stepText(step), () =>
        underSignal(stop, () => (step.side.startsWith('master') ? ctx.locks.run(masterKey, () => step.run(ctx.session)) : step.run(ctx.session))),
      );
      pending = [{ t: 'state', state: structuredClone(state) }, { t: 'step', id: step.id, phase: 'done', at: new Date().toISOString() }];
    } catch (err) {
      const cancelled = stop.aborted;
      const undo = await unstoppable(() => rollback(started, ctx.session, lock, log));
      const cause = cancelled ? `${lock.lost ? `lost the lock: ${lock.lost}` : 'cancelled'} (${messageOf(err instanceof StepError ? (err.cause ?? err) : err)})` : err instanceof StepError ? messageOf(err.cause ?? err) : messageOf(err);
      await unstoppable(() => lock.append({ t: 'end', outcome: undo.failed ? 'undo-failed' : 'rolled-back', at: new Date().toISOString() })).catch(() => undefined);
      return { failed: new StepError(`${step.side}: ${step.title}`, [cause, ...undo.said].join('; '), { cause: err }), undoFailed: undo.failed };
    }
  }
  if (pending.length > 0) await lock.append(...pending);
  return { failed: null, undoFailed: false };
}

/** Undoes every step that started, newest first; each undo on its own (journalled), so one failing does not stop the others. */
async function rollback(started: Step[], session: Session, lock: SlaveLock, log: (m: string) => void): Promise<{ said: string[]; failed: boolean }> {
  const said: string[] = [];
  let failed = false;
  for (const step of [...started].reverse()) {
    if (!step.undo) continue;
    log(`undo: ${step.undo.text}`);
    try {
      await lock.append({ t: 'undo', id: step.id, phase: 'start', at: new Date().toISOString() });
      const what = await unstoppable(() => step.undo!.run(session));
      if (what) said.push(what);
      await lock.append({ t: 'undo', id: step.id, phase: 'done', at: new Date().toISOString() });
    } catch (err) {
      failed = true;
      said.push(`undoing "${step.side}: ${step.title}" failed (${messageOf(err)})`);
      await lock.append({ t: 'undo', id: step.id, phase: 'failed', error: messageOf(err).slice(0, 500), at: new Date().toISOString() }).catch(() => undefined);
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
