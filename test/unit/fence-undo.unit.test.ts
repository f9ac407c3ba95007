/**
 * The fence's undo decides from the journalled state, never from asking the slave (which may
 * not answer right after its promotion): past the point of no return (PostgreSQL: pg_promote
 * sent; MySQL: the detach begun) the master stays read-only; before it, the master is made
 * writable again only if this run fenced it. The point of no return is journalled before the
 * statement that passes it. No server here: the client modules record the statements.
 */
import type { Session, Step } from '../../src/engines/engine';
import { plan as pgPlan } from '../../src/engines/postgresql/steps';
import { plan as myPlan } from '../../src/engines/mysql/steps';
import type { PgFacts } from '../../src/engines/postgresql/inspect';
import type { MyFacts } from '../../src/engines/mysql/inspect';
import { parseVersion } from '../../src/engines/mysql/dialect';
import { pair, server } from './helpers/build';

const sent: string[] = [];
/** Rows each statement answers: in recovery (PostgreSQL), read_only 0 and one replica row (MySQL). */
const answer = (q: string): Record<string, unknown>[] => {
  if (/pg_is_in_recovery/.test(q)) return [{ r: true, rec: true }];
  if (/pg_promote/.test(q)) return [{ ok: true }];
  if (/@@global.read_only/.test(q)) return [{ ro: 0 }];
  if (/SHOW (SLAVE|REPLICA) STATUS/.test(q)) return [{}];
  return [];
};
jest.mock('../../src/engines/postgresql/client', () => ({
  withClient: async (_s: unknown, _server: unknown, fn: (sql: unknown) => Promise<unknown>) =>
    fn({ query: async (q: string) => (sent.push(q), { rows: answer(q) }) }),
}));
jest.mock('../../src/engines/mysql/client', () => ({
  withClient: async (_s: unknown, _server: unknown, fn: (sql: unknown) => Promise<unknown>) => fn({ query: async (q: string) => (sent.push(q), answer(q)) }),
}));

const journal: string[] = [];
function session(state: () => Record<string, unknown>): Session {
  return { hosts: {}, log: { info: () => undefined, warn: () => undefined }, checkpoint: async () => void journal.push(JSON.stringify(state())) } as unknown as Session;
}
const byId = (steps: Step[], id: string): Step => steps.find((s) => s.id === id)!;
beforeEach(() => {
  sent.length = 0;
  journal.length = 0;
});

describe('PostgreSQL', () => {
  const M = server('old/db', { host: '10.0.1.5' });
  const S = server('new/db', { host: '10.0.1.6' });
  const P = { ...pair(M, S), fence: true };
  const facts = { versionNum: 150004, dataDirectory: '/d', slots: [], inRecovery: false, receiver: null, primarySlotName: null } as unknown as PgFacts;
  const steps = (state: Record<string, unknown>): Step[] => pgPlan(P, 'disable', { m: facts, s: { ...facts, inRecovery: true } }, 'x', state).steps;

  test('promotion begun: the master stays read-only, nothing is sent', async () => {
    const state = { promoting: true, fenced: true };
    expect(await byId(steps(state), 'fence').undo!.run(session(() => state))).toBe('old/db stays read-only: the promotion of new/db had begun, and one writer is what the fence is for');
    expect(sent).toEqual([]);
  });

  test('fenced, not promoted: the master is made writable again', async () => {
    const state = { promoting: false, fenced: true };
    expect(await byId(steps(state), 'fence').undo!.run(session(() => state))).toBe('old/db is writable again');
    expect(sent).toEqual(['ALTER SYSTEM RESET default_transaction_read_only', 'SELECT pg_reload_conf()']);
  });

  test('not fenced by this run (already read-only, or killed before): nothing to undo', async () => {
    const state = { promoting: false, fenced: false };
    expect(await byId(steps(state), 'fence').undo!.run(session(() => state))).toBe('');
    expect(sent).toEqual([]);
  });

  test('the promotion is journalled before pg_promote is sent', async () => {
    const state: Record<string, unknown> = {};
    await byId(steps(state), 'promote').run(session(() => state));
    expect(journal).toEqual([JSON.stringify({ promoting: true, fenced: false })]);
    expect(sent.some((q) => q.includes('pg_promote'))).toBe(true);
  });
});

describe('MySQL', () => {
  const M = server('old/db', { engine: 'mysql', host: '10.0.1.5' });
  const S = server('new/db', { engine: 'mysql', host: '10.0.1.6' });
  const P = { ...pair(M, S), fence: true };
  const facts = { version: parseVersion('8.4.3'), readOnly: false, superReadOnly: false, datadir: '/var/lib/mysql' } as unknown as MyFacts;
  const steps = (state: Record<string, unknown>): Step[] => myPlan(P, 'disable', { m: facts, s: facts }, 'x', state).steps;

  test('detach begun: the master stays read-only, nothing is sent', async () => {
    const state = { detaching: true, fenced: true, optionsSaved: false, optionsBefore: null };
    expect(await byId(steps(state), 'fence').undo!.run(session(() => state))).toBe('old/db stays read-only: the detach of new/db had begun, and one writer is what the fence is for');
    expect(sent).toEqual([]);
  });

  test('fenced, not detached: the master is made writable again', async () => {
    const state = { detaching: false, fenced: true, optionsSaved: false, optionsBefore: null };
    expect(await byId(steps(state), 'fence').undo!.run(session(() => state))).toBe('old/db is writable again');
    expect(sent).toEqual(['SET PERSIST super_read_only = OFF', 'SET PERSIST read_only = OFF']);
  });

  test('the detach is journalled before replication is reset; its undo finishes a reset detach', async () => {
    const state: Record<string, unknown> = {};
    const list = steps(state);
    await byId(list, 'detach').run(session(() => state));
    expect(JSON.parse(journal[0]!)).toMatchObject({ detaching: true });
    expect(sent[0]).toMatch(/^STOP REPLICA/);
    sent.length = 0;
    // The replica still configured (a row): nothing to finish.
    expect(await byId(list, 'detach').undo!.run(session(() => state))).toBe('');
  });
});
