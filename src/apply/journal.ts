import type { ChangeAction, Sides } from '../engines/engine';

/**
 * The journal of one action, kept next to the slave's lock on its host (hosts/run-state.ts)
 * and appended as the action runs: what it is (with the facts it was planned from, so the
 * same step list can be built again), which steps started and finished, the steps' own
 * state (what an undo needs to know: "this run created the slot"), and which undos ran.
 * A run killed at any point leaves a journal the next run reads to roll the action back.
 */
export type JournalRecord =
  | { t: 'begin'; pair: string; action: ChangeAction; stamp: string; master: string; slave: string; sides: Sides<unknown>; steps: Array<{ id: string; text: string }>; run: string; at: string; fence?: boolean }
  | { t: 'state'; state: Record<string, unknown> }
  | { t: 'step'; id: string; phase: 'start' | 'done'; at: string }
  | { t: 'undo'; id: string; phase: 'start' | 'done' | 'failed'; error?: string; at: string }
  | { t: 'end'; outcome: 'done' | 'rolled-back' | 'undo-failed'; at: string };

/** What a journal says about an action that did not end. */
export interface Interrupted {
  pair: string;
  action: ChangeAction;
  stamp: string;
  master: string;
  slave: string;
  sides: Sides<unknown>;
  steps: Array<{ id: string; text: string }>;
  run: string;
  began: string;
  /** The pair was fenced (fence: true or --fence): its step list is built again with the fence. */
  fence: boolean;
  /** Steps that started, in order; those that also finished. */
  started: string[];
  done: Set<string>;
  /** Undos already done, and those that failed (with why). */
  undone: Set<string>;
  undoFailed: Map<string, string>;
  state: Record<string, unknown>;
  /** Every step finished: the action completed, only its end was not written. */
  complete: boolean;
}

export function parseJournal(text: string): JournalRecord[] {
  const out: JournalRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as JournalRecord;
      if (r && typeof r === 'object' && typeof r.t === 'string') out.push(r);
    } catch {
      // A line cut short by a kill: what it would have said did not happen for sure.
    }
  }
  return out;
}

/** The last action of a journal, when it did not end (done or rolled back); null otherwise. */
export function interruptedOf(records: JournalRecord[]): Interrupted | null {
  let begin = -1;
  for (let i = records.length - 1; i >= 0; i--) {
    if (records[i]!.t === 'begin') {
      begin = i;
      break;
    }
  }
  if (begin < 0) return null;
  const b = records[begin] as Extract<JournalRecord, { t: 'begin' }>;
  const out: Interrupted = {
    pair: b.pair,
    action: b.action,
    stamp: b.stamp,
    master: b.master,
    slave: b.slave,
    sides: b.sides,
    steps: b.steps,
    run: b.run,
    began: b.at,
    fence: b.fence === true,
    started: [],
    done: new Set(),
    undone: new Set(),
    undoFailed: new Map(),
    state: {},
    complete: false,
  };
  for (const r of records.slice(begin + 1)) {
    if (r.t === 'end' && r.outcome !== 'undo-failed') return null;
    if (r.t === 'state') out.state = r.state;
    if (r.t === 'step' && r.phase === 'start' && !out.started.includes(r.id)) out.started.push(r.id);
    if (r.t === 'step' && r.phase === 'done') out.done.add(r.id);
    if (r.t === 'undo' && r.phase === 'done') {
      out.undone.add(r.id);
      out.undoFailed.delete(r.id);
    }
    if (r.t === 'undo' && r.phase === 'failed') out.undoFailed.set(r.id, r.error ?? 'failed');
  }
  out.complete = out.steps.length > 0 && out.steps.every((s) => out.done.has(s.id));
  return out;
}

/** "interrupted enable of shop/pg-replica at step 5 of 9 (slave: pg_basebackup ...), started ... by run ..." */
export function describeInterrupted(i: Interrupted): string {
  const last = i.started[i.started.length - 1];
  const index = last ? i.steps.findIndex((s) => s.id === last) : -1;
  const where = i.complete
    ? 'after its last step'
    : last
      ? `at step ${index + 1} of ${i.steps.length} (${i.steps[index]?.text ?? last})${i.done.has(last) ? ', which had finished' : ''}`
      : 'before its first step';
  const undo = i.undoFailed.size > 0 ? `; undoing it failed before: ${[...i.undoFailed.values()].join('; ')}` : i.undone.size > 0 ? `; ${i.undone.size} step(s) already undone` : '';
  return `interrupted ${i.action} of ${i.pair} ${where}, started ${i.began} by run ${i.run}${undo}`;
}
