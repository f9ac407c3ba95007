import { checkAction, masterlessPlans, settle } from './apply/checks';
import { describeInterrupted } from './apply/journal';
import { lockState } from './apply/locks';
import { parseDuration } from './config/schema';
import { applyPlan } from './apply/run';
import { engineFor } from './engines';
import { stepText } from './engines/engine';
import type { ChangeAction, Finding, Inspection, Logger, Session } from './engines/engine';
import { computeEnv, desiredEnv } from './env/compute';
import { UsageError, messageOf } from './errors';
import type { HostProvider } from './hosts/host';
import { DefaultHostProvider } from './hosts/provider';
import { localOwner, Owner } from './hosts/run-state';
import type { Pair, Server, Topology } from './model';
import { buildPlan, buildStatus, identityOf, livePair, Mode, prunePair, sidesOf } from './plan/diff';
import type { EnvMap, Plan, PreservedCopy, Status } from './plan/types';
import { chooseRemovals, CopyListing, findCopies, RemovalRequest, removeCopies } from './preserved';
import type { SecretRegistry } from './secrets';
import { loadTopology, onlyError, selectPairs } from './topology';

/** Everything the core needs from its caller (CLI or action); nothing below reads process state. */
export interface CoreOptions {
  configPath: string;
  only?: string[];
  maxParallel: number;
  env: NodeJS.ProcessEnv;
  secrets: SecretRegistry;
  log: Logger;
  hosts?: HostProvider;
  now?: Date;
  /** How long apply waits for another run's lock on a slave or a master (--lock-timeout; default 0: fail at once). */
  lockTimeoutMs?: number;
  /** The run's cancellation (SIGINT/SIGTERM): running actions are rolled back, others not started. */
  signal?: AbortSignal;
  /** Go ahead where a check refuses only what --force may override (Finding.forceable). */
  force?: boolean;
  /** --fence: every disable of this run fences the master first (as fence: true on each pair). */
  fence?: boolean;
}

/** `DBREPL_PROGRESS_INTERVAL` (a duration, default 5s): how often long copies say how far they are. */
function progressEvery(env: NodeJS.ProcessEnv): number | undefined {
  const text = env.DBREPL_PROGRESS_INTERVAL;
  if (!text) return undefined;
  try {
    return parseDuration(text) * 1000;
  } catch {
    throw new UsageError(`DBREPL_PROGRESS_INTERVAL takes a duration such as 30s or 1m, not "${text}"`);
  }
}

export type Command = 'plan' | 'apply' | 'status' | 'resync';

export interface RunResult {
  plan: Plan;
  status: Status;
  env: EnvMap;
  /** The variables of what was live before the run (a changed variable is one that differs from it). */
  envBefore: EnvMap;
  /** Each application's GitHub environment, where it names one. */
  environments: Record<string, string | undefined>;
  /** 0 success, 1 error (unreachable server, a refused pair, a failed step) — SPEC section 3. */
  exitCode: 0 | 1;
}

export function load(options: CoreOptions): { topology: Topology; selected: Pair[] } {
  const { topology } = loadTopology(options.configPath, options.env, options.secrets);
  if (options.fence) for (const p of topology.pairs) p.fence = true;
  const { pairs, unknown } = selectPairs(topology, options.only);
  if (unknown.length > 0) {
    throw onlyError(topology, unknown);
  }
  return { topology, selected: pairs };
}

/** Servers to inspect: both sides of every selected pair, and (for drift) every server of the selected applications. */
function serversToInspect(topology: Topology, selected: Pair[], only: string[] | undefined): Server[] {
  const refs = new Set<string>();
  for (const p of selected) {
    refs.add(p.master.ref);
    refs.add(p.slave.ref);
  }
  const apps = only && only.length > 0 ? new Set([...selected.flatMap((p) => [p.master.app, p.slave.app]), ...only]) : null;
  for (const s of topology.servers.values()) if (!apps || apps.has(s.app)) refs.add(s.ref);
  return [...refs].map((r) => topology.servers.get(r)!);
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

const limited =
  (limit: number) =>
  <T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> =>
    eachLimited(items, limit, fn);

export interface PreservedResult {
  listing: CopyListing;
  /** For `remove`: per copy chosen, null when removed or why not; absent on a dry run. */
  removed?: Map<string, string | null>;
  chosen: PreservedCopy[];
  refused: Array<{ path: string; error: string }>;
  dryRun: boolean;
  exitCode: 0 | 1;
}

/**
 * `dbrepl preserved list|remove`: inspects the selected servers (to learn where their data
 * lives), lists the copies dbrepl kept next to it, and for `remove` deletes those the
 * request chooses, only with `yes`.
 */
export async function preserved(kind: 'list' | 'remove', options: CoreOptions, request: RemovalRequest & { yes?: boolean } = {}): Promise<PreservedResult> {
  const { topology, selected } = load(options);
  const servers = serversToInspect(topology, selected, options.only);
  const hosts = options.hosts ?? new DefaultHostProvider(options.env);
  const session: Session = { hosts, log: options.log };
  try {
    const inspections = await inspectServers(servers, options.maxParallel, session);
    const listing = await findCopies(servers, inspections, session, options.now ?? new Date(), localOwner(options.env), limited(options.maxParallel));
    if (kind === 'list') {
      if (request.olderThanSeconds !== undefined) listing.copies = listing.copies.filter((c) => c.copy.age_seconds >= request.olderThanSeconds!);
      return { listing, chosen: [], refused: [], dryRun: false, exitCode: listing.errors.length > 0 ? 1 : 0 };
    }
    const { chosen, refused } = chooseRemovals(listing, request);
    const dryRun = !request.yes;
    const removed = dryRun ? undefined : await removeCopies(chosen, limited(options.maxParallel));
    const failed = refused.length > 0 || listing.errors.length > 0 || [...(removed?.values() ?? [])].some((e) => e !== null);
    return { listing, chosen: chosen.map((c) => c.copy), refused, removed, dryRun, exitCode: failed ? 1 : 0 };
  } finally {
    await hosts.closeAll();
  }
}

export async function inspectServers(servers: Server[], maxParallel: number, session: Session): Promise<Map<string, Inspection>> {
  const out = new Map<string, Inspection>();
  await eachLimited(servers, maxParallel, async (server) => {
    try {
      out.set(server.ref, { ok: true, server, facts: await engineFor(server.engine).inspect(server, session) });
    } catch (err) {
      const msg = messageOf(err);
      const error = msg.startsWith(`${server.ref}: `) ? msg.slice(server.ref.length + 2) : msg;
      session.log.warn(`${server.ref}: cannot inspect: ${error}`);
      out.set(server.ref, { ok: false, server, error });
    }
  });
  return out;
}

/** UTC to the millisecond (20261126T071509123Z): two runs in one second must not name the same path. */
function stampOf(now: Date): string {
  return now.toISOString().replace(/[-:.]/g, '');
}

/** Inspect, diff, check, and (for apply/resync) execute; the status and env reflect the end state. */
export async function run(command: Command, options: CoreOptions, mode: Mode = { kind: 'converge' }): Promise<RunResult> {
  const { topology, selected } = load(options);
  if (mode.kind === 'resync') {
    const known = new Set(topology.pairs.map((p) => p.name));
    const missing = [...mode.pairs].filter((p) => !known.has(p));
    if (missing.length > 0) throw new UsageError(`resync names unknown pair(s): ${missing.join(', ')}; pairs: ${[...known].join(', ') || '(none)'}`);
  }
  const servers = serversToInspect(topology, selected, options.only);
  // One provider from the first inspection to the verification after apply.
  const hosts = options.hosts ?? new DefaultHostProvider(options.env);
  const session: Session = { hosts, log: options.log, progressEveryMs: progressEvery(options.env), declared: [...topology.servers.values()], probeHosts: command !== 'status' };
  try {
    options.log.info(`Inspecting ${servers.length} server(s) for ${selected.length} pair(s)`);
    const inspections = await inspectServers(servers, options.maxParallel, session);
    const before = buildStatus(selected, inspections);
    const known = {
      envBefore: computeEnv(topology, (pair) => inEffect(pair, selected.includes(pair), inspections)),
      environments: Object.fromEntries(topology.applications.map((a) => [a.name, a.environment])),
    };
    if (command === 'status') {
      const plan = buildPlan({ topology, selected, inspections, stamp: '', mode, env: desiredEnv(topology) }, servers);
      const listing = await findCopies(servers, inspections, session, options.now ?? new Date(), localOwner(options.env), limited(options.maxParallel));
      // Listing copies is a courtesy of status: a host it cannot list on is said, and does not fail the status.
      for (const e of listing.errors) if (!e.error.startsWith('cannot inspect')) options.log.warn(`${e.server}: cannot list its preserved copies: ${e.error}`);
      before.preserved = listing.copies.map((c) => c.copy);
      return { plan, status: before, env: plan.env, ...known, exitCode: before.pairs.some((p) => p.state === 'unreachable') ? 1 : 0 };
    }
    const stamp = stampOf(options.now ?? new Date());
    const owner = localOwner(options.env);
    const plan = buildPlan({ topology, selected, inspections, stamp, mode, env: desiredEnv(topology) }, servers);
    await checkPlan(plan, topology, inspections, session, options.maxParallel, stamp, options.force ?? false);
    await checkLocks(plan, topology, session, owner, options.maxParallel, options.lockTimeoutMs ?? 0);
    plan.changes = plan.pairs.filter((p) => p.action !== 'none' || p.interrupted).length + plan.drift.filter((d) => d.action !== 'none').length;
    const blocked = plan.pairs.some((p) => p.error !== null) || plan.drift.some((d) => d.error !== null);
    if (command === 'plan') return { plan, status: before, env: plan.env, ...known, exitCode: blocked ? 1 : 0 };

    await applyPlan(plan, {
      topology,
      session,
      maxParallel: options.maxParallel,
      mode,
      stamp,
      identityOf: (s) => identityOf(s, inspections),
      owner,
      lockTimeoutMs: options.lockTimeoutMs ?? 0,
      signal: options.signal,
      force: options.force ?? false,
    });
    // Verify: inspect again; the status and the variables come from what is live now.
    const after = await inspectServers(servers, options.maxParallel, { ...session, probeHosts: false });
    const status = buildStatus(selected, after);
    const env = computeEnv(topology, (pair) => inEffect(pair, plan.pairs.some((p) => p.name === pair.name), after));
    plan.env = env;
    const failed = plan.pairs.some((p) => p.result === 'failed' || (p.error !== null && p.live === 'unreachable')) || plan.drift.some((d) => d.result === 'failed');
    return { plan, status, env, ...known, exitCode: failed ? 1 : 0 };
  } finally {
    await hosts.closeAll();
  }
}

/**
 * Each pair's slave lock, read (plan changes nothing): another run at work is said (apply
 * waits for it up to the lock timeout); an action a killed run left half-done is named, and
 * apply will roll it back first, also when that run left the slave down (unreachable).
 */
async function checkLocks(plan: Plan, topology: Topology, session: Session, me: Owner, maxParallel: number, lockTimeoutMs: number): Promise<void> {
  const byName = new Map(topology.pairs.map((p) => [p.name, p]));
  await eachLimited(plan.pairs, maxParallel, async (planned) => {
    planned.interrupted = null;
    planned.locked_by = null;
    const pair = byName.get(planned.name)!;
    let state;
    try {
      state = await lockState(await session.hosts.forServer(pair.slave), pair.slave, me);
    } catch {
      return; // its host cannot be reached: the inspection has said so
    }
    if (!state) return;
    if (!state.gone) {
      planned.locked_by = state.holder;
      planned.warnings.push(`${pair.slave.ref} is locked by ${state.holder}${state.interrupted ? ` (${describeInterrupted(state.interrupted).replace(/^interrupted /, 'doing: ')})` : ''}; apply waits up to --lock-timeout (${Math.round(lockTimeoutMs / 1000)} s) for it`);
      if (planned.live === 'unreachable') {
        // Most likely stopped by that run (a rebuild under way): decided again once its lock is free.
        planned.action = pair.desired === 'disabled' ? 'disable' : 'none';
        planned.reason = `${pair.slave.ref} cannot be inspected while ${state.holder} works on it; apply waits for its lock, then decides again`;
        planned.error = null;
      }
      return;
    }
    if (!state.interrupted) {
      planned.warnings.push(`${pair.slave.ref} has a lock left by ${state.holder}, which is gone (${state.gone}); apply takes it over`);
      return;
    }
    const i = state.interrupted;
    planned.interrupted = describeInterrupted(i);
    planned.warnings.push(`${planned.interrupted}; its run is gone (${state.gone}): apply rolls it back first${i.complete ? ' (every step had finished: nothing to undo)' : ''}, then decides again`);
    if (planned.live === 'unreachable') {
      // Most likely the slave that run stopped: the rollback starts it again, then the pair is decided afresh.
      const again = pair.desired === 'enabled' ? (i.action === 'disable' ? null : i.action) : i.action === 'disable' ? 'disable' : null;
      planned.action = again ?? 'none';
      planned.reason = `${planned.interrupted}; after the rollback: ${again ?? 'decided again'}`;
      planned.error = null;
    }
  });
}

/**
 * Every check that changes nothing, at plan time, so a plan that looks fine does not fail
 * half-way: a refusal becomes the pair's error, a warning joins its warnings.
 */
async function checkPlan(plan: Plan, topology: Topology, inspections: ReadonlyMap<string, Inspection>, session: Session, maxParallel: number, stamp: string, force: boolean): Promise<void> {
  const byName = new Map(topology.pairs.map((p) => [p.name, p]));
  const apply = (row: { error: string | null; warnings?: string[] }, found: Finding[]): void => {
    const findings = settle(found, force);
    const errors = findings.filter((f) => f.level === 'error').map((f) => f.message);
    if (errors.length > 0) row.error = errors.join('; ');
    if (row.warnings) for (const w of findings.filter((f) => f.level === 'warning')) if (!row.warnings.includes(w.message)) row.warnings.push(w.message);
  };
  const rows: Array<() => Promise<void>> = [];
  // One slave, one master: two pairs whose slaves are one server under two names are refused.
  const slaves = new Map<string, Pair>();
  for (const planned of plan.pairs) {
    const pair = byName.get(planned.name)!;
    const sides = sidesOf(pair, inspections);
    if (!sides) {
      masterlessDisable(planned, pair, inspections, stamp, force);
      continue;
    }
    const first = slaves.get(identityOf(pair.slave, inspections));
    if (first && first !== pair) {
      planned.error = `${pair.slave.ref} is the same server as ${first.slave.ref}, the slave of ${first.name} (replications[${first.index}]); a slave has exactly one master: declare one pair for it`;
      continue;
    }
    slaves.set(identityOf(pair.slave, inspections), pair);
    rows.push(async () => {
      const engine = engineFor(pair.engine);
      const action = planned.action === 'none' ? null : (planned.action as ChangeAction);
      const actionPlan = action ? engine.plan(pair, action, sides, stamp) : null;
      apply(planned, await checkAction(engine, pair, sides, action && actionPlan ? { action, plan: actionPlan } : null, session));
    });
  }
  for (const entry of plan.drift) {
    if (entry.action !== 'disable') continue;
    const pair = prunePair(topology.servers.get(entry.master)!, topology.servers.get(entry.slave)!);
    const sides = sidesOf(pair, inspections);
    if (!sides) continue;
    rows.push(async () => {
      const engine = engineFor(pair.engine);
      apply(entry, await checkAction(engine, pair, sides, { action: 'disable', plan: engine.plan(pair, 'disable', sides, stamp) }, session));
    });
  }
  await eachLimited(rows, maxParallel, (row) => row());
}

/**
 * A disable whose master cannot be reached: it cannot catch up first, so it is refused, saying
 * what would be lost, unless --force (then the slave is promoted as it is). Not even --force
 * goes ahead when the master evidently answers (a refused login, too many connections, starting
 * up: it is alive and may take writes) or when the pair is fenced (nothing can fence it).
 */
function masterlessDisable(planned: Plan['pairs'][number], pair: Pair, inspections: ReadonlyMap<string, Inspection>, stamp: string, force: boolean): void {
  const m = inspections.get(pair.master.ref);
  const s = inspections.get(pair.slave.ref);
  if (planned.action !== 'disable' || !m || m.ok || !s?.ok) return;
  const engine = engineFor(pair.engine);
  const lag = planned.lag_seconds !== null || planned.lag_bytes !== null ? `last known lag ${planned.lag_seconds ?? '?'} s / ${planned.lag_bytes ?? '?'} bytes` : 'its lag is unknown';
  const lost = `promoting ${pair.slave.ref} now loses what ${pair.master.ref} took that ${pair.slave.ref} has not received (${lag})`;
  if (ALIVE.test(m.error)) {
    planned.error = `${pair.master.ref} answers but cannot be inspected (${m.error}): it is alive and may be taking writes, so the disable cannot go ahead without it (${lost}); fix the login or wait until it accepts connections, then apply again`;
    return;
  }
  if (pair.fence) {
    planned.error = `${pair.master.ref} cannot be reached (${m.error}), so it cannot be fenced and the disable cannot wait for ${pair.slave.ref} to catch up (${lost}); make sure it takes no writes (stop it), then take fence off the pair (or drop --fence) and apply --force`;
    return;
  }
  const finding: Finding = {
    level: 'error',
    forceable: true,
    message: `${pair.master.ref} cannot be reached (${m.error}): the disable cannot wait for ${pair.slave.ref} to catch up; ${lost}. If it is only out of this runner's reach it may still be taking writes: stop it first. It keeps its replication state for ${pair.slave.ref}`,
  };
  const [settled] = settle([finding], force);
  if (settled!.level === 'error') {
    planned.error = settled!.message;
    return;
  }
  planned.error = null;
  masterlessPlans.add(planned);
  const plan = engine.plan(pair, 'disable', { m: null, s: s.facts }, stamp);
  planned.steps = plan.steps.map(stepText);
  planned.disruption = plan.disruption;
  planned.warnings.push(settled!.message, ...plan.warnings);
}

/** Errors of a server that answered: it is running. */
const ALIVE = /password authentication failed|authentication failed|access denied|WRONGPASS|NOAUTH|too many (connections|clients)|max number of clients|starting up|shutting down|in recovery mode|LOADING/i;

/**
 * Whether a pair counts in the environment variables (before the run, or after apply): a
 * pair the run did not select keeps what the file says; a selected one counts when it is
 * verified live.
 */
function inEffect(pair: Pair, selected: boolean, inspections: ReadonlyMap<string, Inspection>): boolean {
  if (!selected) return pair.desired === 'enabled';
  const state = livePair(pair, inspections).state;
  return state === 'replicating' || state === 'lagging' || state === 'reconnecting';
}
