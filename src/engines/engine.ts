import type { CopyPattern } from '../hosts/copies';
import type { Host, HostProvider } from '../hosts/host';
import type { Owner } from '../hosts/run-state';
import type { Pair, Server } from '../model';
import type { EngineCapabilities } from './capabilities';

/** Live states of SPEC section 3. */
export const LIVE_STATES = ['replicating', 'lagging', 'reconnecting', 'broken', 'other-master', 'standalone', 'unreachable'] as const;
export type LiveState = (typeof LIVE_STATES)[number];

export type Action = 'none' | 'enable' | 'disable' | 'resync';
export type ChangeAction = Exclude<Action, 'none'>;

/** What inspection found for one pair, from both sides. */
export interface PairLive {
  state: LiveState;
  lagSeconds: number | null;
  lagBytes: number | null;
  error: string | null;
  /** The master keeps replication state for this slave (slot, replica entry): it was enabled before. */
  masterKeepsSlave: boolean;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** How engines reach servers (connections) and their hosts (commands); one per run. */
export interface Session {
  hosts: HostProvider;
  log: Logger;
  /** How often long copies say how far they are (default PROGRESS_EVERY_MS). */
  progressEveryMs?: number;
  /**
   * Writes the action's step state to its journal now: a step calls it right after it
   * changed something its undo must know about (a slot it created, data it moved), so a
   * run killed a moment later leaves that in the journal for the next run's rollback.
   */
  checkpoint?: () => Promise<void>;
  /** Every server the file declares (a check that tells declared members from others). */
  declared?: readonly Server[];
  /**
   * Apply's second run of the checks, after its locks: the plan showed the warnings already,
   * so checks that only warn and take time (a write rate sampled over a second) are skipped.
   */
  recheck?: boolean;
  /**
   * The run may change servers (plan, apply, resync): inspection also reads what the hosts
   * offer for a copy (the programs there, which machine they are). Status leaves hosts alone.
   */
  probeHosts?: boolean;
}

/**
 * The state an action's steps keep for their undos: `saved` (the object the protocol
 * journals; filled from the journal when a killed run is rolled back) with the defaults
 * for what it does not hold yet. The same object is returned, so the protocol sees every change.
 */
export function stepState<T extends object>(saved: Record<string, unknown> | undefined, defaults: T): T {
  const target = saved ?? {};
  for (const [k, v] of Object.entries(defaults)) if (!(k in target)) target[k] = v;
  return target as T;
}

/** Outcome of inspecting one server: engine-specific facts, or why it could not be reached. */
export type Inspection<F = unknown> = { ok: true; server: Server; facts: F } | { ok: false; server: Server; error: string };

/** Both sides' facts, when both could be inspected. */
export interface Sides<F> {
  m: F;
  s: F;
}

/** Live replication between declared servers, found from the slave's side. */
export interface LiveLink {
  slave: Server;
  /** The declared server it follows, when it follows one. */
  master: Server | null;
  /** Where it follows, as the slave's own settings say (host:port). */
  upstream: string;
}

/** A check that changes nothing: run when planning, and again by apply before the first change. */
export interface Finding {
  level: 'error' | 'warning';
  message: string;
  /**
   * A refusal the operator may override with --force (what the message says could be lost):
   * with it the finding is a warning, without it an error that says so.
   */
  forceable?: boolean;
}

export type StepSide = 'master' | 'master host' | 'slave' | 'slave host';

/**
 * One step of an action. The plan's text is the list of step texts, and apply runs the
 * same list, so what the plan says is what runs. `undo` is called, newest first, for every
 * step that started when a later one (or the step itself) fails; it must not depend on the
 * statement that failed, and returns what it did for the report.
 */
export interface Step {
  /** Stable key of the step (the journal of resumable runs keys on it). */
  id: string;
  side: StepSide;
  /** Short name for logs and errors: `step "<side>: <title>" failed`. */
  title: string;
  /** The plan's line, naming the statements and programs that run; default `<side>: <title>`. */
  text?: string;
  run(session: Session): Promise<void>;
  undo?: { text: string; run(session: Session): Promise<string> };
}

/** An action as data, computed purely from inspection. */
export interface ActionPlan {
  steps: Step[];
  disruption: string | null;
  /** Where the slave's previous data will be kept (enable/resync). */
  preserved: string | null;
  /** A rebuild holds `<lockDir>.dbrepl-lock` on the slave's host (enable/resync). */
  lockDir: string | null;
  warnings: string[];
}

/** A lock held on a master for a run (released when the run's last action on it ends). */
export interface MasterLock {
  release(): Promise<void>;
}

/** Who a server is, whatever name reached it: equal keys are one server. */
export interface Identity {
  key: string;
  /** For messages: what was compared. */
  text: string;
}

/**
 * One engine: every engine folder implements this. Inspection and preflight are the only
 * parts that read servers during plan/status; identity, pairState, liveLinks and plan are pure.
 */
export interface Engine<F = unknown> {
  readonly capabilities: EngineCapabilities;
  inspect(server: Server, session: Session): Promise<F>;
  identity(facts: F): Identity;
  /** Where this server's previous data is kept when it is rebuilt as a slave. */
  copies(facts: F): CopyPattern;
  pairState(pair: Pair, master: Inspection<F>, slave: Inspection<F>): PairLive;
  /** Replication links live on declared servers (for drift). */
  liveLinks(inspections: Array<Inspection<F>>, servers: Server[]): LiveLink[];
  /** `state`: the steps' journalled state (see stepState); a fresh object for a new action. */
  plan(pair: Pair, action: ChangeAction, sides: Sides<F>, stamp: string, state?: Record<string, unknown>): ActionPlan;
  /**
   * Checks that change nothing but need a server or a host (logins, files, disk, the host
   * really runs the server). `planned` is null for a pair with nothing to do, which may
   * still get warnings (a setting that would not survive a restart).
   */
  preflight(pair: Pair, sides: Sides<F>, planned: { action: ChangeAction; plan: ActionPlan } | null, session: Session): Promise<Finding[]>;
  /** Throws unless host commands on `host` reach the machine that runs this server (its pid file, its process). */
  verifyHost(host: Host, server: Server, facts: F): Promise<void>;
  /**
   * Takes the run's lock on a master, on the master itself (released if the run dies with
   * its connection); waits up to `waitMs` for another run's, then fails naming its holder.
   */
  lockMaster(server: Server, session: Session, owner: Owner, waitMs: number, log: (m: string) => void): Promise<MasterLock>;
}

/**
 * Both sides' facts, or the `unreachable` live state naming every side that could not be
 * inspected (the same for every engine).
 */
export function bothSides<F>(master: Inspection<F>, slave: Inspection<F>): { live: PairLive } | { m: F; s: F } {
  if (master.ok && slave.ok) return { m: master.facts, s: slave.facts };
  const down = [master, slave].filter((i): i is Extract<Inspection<F>, { ok: false }> => !i.ok);
  return {
    live: {
      state: 'unreachable',
      lagSeconds: null,
      lagBytes: null,
      masterKeepsSlave: false,
      error: down.map((i) => `${i.server.ref} unreachable: ${i.error}`).join('; '),
    },
  };
}

/** A finding from a check that throws (the checks read best as `await check()`). */
export async function finding(level: Finding['level'], check: () => Promise<unknown>): Promise<Finding[]> {
  try {
    await check();
    return [];
  } catch (err) {
    return [{ level, message: err instanceof Error ? err.message : String(err) }];
  }
}

export function stepText(step: Step): string {
  return step.text ?? `${step.side}: ${step.title}`;
}

/** Two hosts that are one machine (same boot), whatever names reach them. */
export async function sharedMachine(a: Host, b: Host): Promise<boolean> {
  if (a === b) return true;
  return (await a.facts()).bootId === (await b.facts()).bootId;
}

/** The host of a server for checks, or null with the reason recorded (no transport, an SSH refusal). */
export async function hostOrError(session: Session, server: Server, error: (message: string) => void): Promise<Host | null> {
  try {
    return await session.hosts.forServer(server);
  } catch (err) {
    error(err instanceof Error ? err.message : String(err));
    return null;
  }
}

/**
 * What every host dbrepl works on needs: root (directly or through ssh.sudo), since it acts
 * as each server's own user; and the programs the host layer itself runs (a found-out-late
 * missing `timeout` or `setpriv` would fail a step half-way).
 */
export async function checkHostCanWork(host: Host, server: Server): Promise<void> {
  const facts = await host.facts();
  if (facts.uid !== 0) {
    throw new Error(`host commands for ${server.ref} run as uid ${facts.uid} on ${host.label}; dbrepl needs root there to act as the server's own user: log in as root or set ssh.sudo: true`);
  }
  const r = await host.run(['sh', '-c', 'for p in "$@"; do command -v "$p" >/dev/null 2>&1 || printf "%s " "$p"; done', 'sh', 'bash', 'setpriv', 'timeout', 'stat', 'mktemp', 'flock']);
  const missing = r.stdout.trim();
  if (missing) throw new Error(`${host.label} lacks ${missing.split(' ').join(', ')} (needed by dbrepl for ${server.ref}); install coreutils, util-linux and bash there`);
}

/** Two hosts that share a loopback (one machine and one network namespace). */
export async function sharedNetwork(a: Host, b: Host): Promise<boolean> {
  if (a === b) return true;
  const [fa, fb] = [await a.facts(), await b.facts()];
  return fa.bootId === fb.bootId && fa.netns === fb.netns;
}

export function isLoopback(host: string): boolean {
  return /^(127\.|localhost$|::1$)/i.test(host);
}
