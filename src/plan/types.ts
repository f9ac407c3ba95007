import type { EngineName } from '../config/schema';

/** Live states of SPEC section 3. */
export const LIVE_STATES = ['replicating', 'lagging', 'broken', 'other-master', 'standalone', 'unreachable'] as const;
export type LiveState = (typeof LIVE_STATES)[number];

export type Action = 'none' | 'enable' | 'disable' | 'resync';
export type Result = 'done' | 'failed' | 'skipped';

/** What inspection found for one pair, from both sides. */
export interface PairLive {
  state: LiveState;
  lagSeconds: number | null;
  lagBytes: number | null;
  error: string | null;
  /** The master keeps replication state for this slave (slot, replica entry): it was enabled before. */
  masterKeepsSlave: boolean;
}

/** Engine-specific facts the plan needs to describe an action (computed purely from inspection). */
export interface ActionDetails {
  steps: string[];
  disruption: string | null;
  preserved: string | null;
  warnings: string[];
}

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
