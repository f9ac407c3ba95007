import type { EngineName } from '../config/schema';
import type { HostProvider } from '../hosts/host';
import type { Action, ActionDetails, PairLive, PlannedPair } from '../plan/types';
import type { Pair, Server } from '../topology';

/** Outcome of inspecting one server: engine-specific facts, or why it could not be reached. */
export type Inspection<F = unknown> = { ok: true; server: Server; facts: F } | { ok: false; server: Server; error: string };

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

export interface ApplyContext {
  hosts: HostProvider;
  log: Logger;
  /** Serialises work on one server (e.g. two slaves configuring the same master). */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** Live replication between declared servers, found from the slave's side. */
export interface LiveLink {
  slave: Server;
  /** The declared server it follows, when it follows one. */
  master: Server | null;
  /** Where it follows, as the slave's own settings say (host:port). */
  upstream: string;
}

/**
 * One engine: every engine folder implements this. Inspection is the only part that
 * reads servers during plan/status; `describe` and `pairState` are pure.
 */
export interface Engine<F = unknown> {
  readonly name: EngineName;
  inspectServer(server: Server): Promise<F>;
  pairState(pair: Pair, master: Inspection<F>, slave: Inspection<F>): PairLive;
  /** Steps, disruption and preserved path of an action, from inspection alone. */
  describe(pair: Pair, action: Action, master: Inspection<F>, slave: Inspection<F>, stamp: string): ActionDetails;
  /** Replication links live on declared servers (for drift). */
  liveLinks(inspections: Array<Inspection<F>>, servers: Server[]): LiveLink[];
  enable(pair: Pair, planned: PlannedPair, ctx: ApplyContext): Promise<{ preserved: string | null }>;
  disable(pair: Pair, planned: PlannedPair, ctx: ApplyContext): Promise<void>;
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
