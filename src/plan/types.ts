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
  state: LiveState;
  lag_seconds: number | null;
  lag_bytes: number | null;
  error: string | null;
}

export interface Status {
  pairs: StatusPair[];
}
