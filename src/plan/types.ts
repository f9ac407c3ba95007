import type { EngineName } from '../engines/names';

import type { Action, LiveState } from '../engines/engine';

export { LIVE_STATES } from '../engines/engine';
export type { Action, LiveState, PairLive } from '../engines/engine';

export type Result = 'done' | 'failed' | 'skipped';

/** One row of the plan JSON (SPEC section 3); `result` only after apply. */
export interface PlannedPair {
  name: string;
  engine: EngineName;
  master: string;
  slave: string;
  desired: 'enabled' | 'disabled';
  live: LiveState;
  action: Action;
  reason: string;
  steps: string[];
  disruption: string | null;
  preserved: string | null;
  warnings: string[];
  /** How the replication channel travels: the master's TLS mode (verify-full, require) or none. */
  replication_tls: 'verify-full' | 'require' | 'none';
  lag_seconds: number | null;
  lag_bytes: number | null;
  /** An action a killed run left half-done on the slave (its journal): apply rolls it back first (null: none; set by plan and apply). */
  interrupted?: string | null;
  /** Another run held the slave's lock when this plan was made (apply waits for it, then decides again). */
  locked_by?: string | null;
  result?: Result;
  error: string | null;
}

/** Replication found live between declared servers that the file does not declare. */
export interface DriftEntry {
  name: string;
  engine: EngineName;
  master: string;
  slave: string;
  live: LiveState;
  action: 'none' | 'disable';
  reason: string;
  steps: string[];
  result?: Result;
  error: string | null;
}

export type EnvMap = Record<string, Record<string, string>>;

export interface Plan {
  changes: number;
  pairs: PlannedPair[];
  drift: DriftEntry[];
  env: EnvMap;
}

export interface StatusPair {
  name: string;
  engine: EngineName;
  master: string;
  slave: string;
  /** What the file wants: the state is judged against it. */
  desired: 'enabled' | 'disabled';
  state: LiveState;
  lag_seconds: number | null;
  lag_bytes: number | null;
  error: string | null;
}

/** A copy of a slave's previous data that dbrepl kept on its host. */
export interface PreservedCopy {
  server: string;
  path: string;
  bytes: number;
  /** ISO time of the run that made it. */
  created: string;
  age_seconds: number;
  /** The server's latest copy: `dbrepl preserved remove` never takes it. */
  newest: boolean;
}

export interface Status {
  pairs: StatusPair[];
  /** Per server, the copies of previous data it holds (status only). */
  preserved?: PreservedCopy[];
}

/**
 * Whether a pair is as the file wants it and healthy: an enabled pair replicating within
 * max_lag; a disabled pair whose slave does not follow its master (standalone, or
 * following another server, which is that server's pair's business).
 */
export function asDesired(p: StatusPair): boolean {
  return p.desired === 'enabled' ? p.state === 'replicating' : p.state === 'standalone' || p.state === 'other-master';
}
