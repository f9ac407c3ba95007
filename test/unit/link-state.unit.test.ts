/**
 * The shared reconnecting/broken rule (src/engines/link.ts), durations in its messages, and
 * what the plan does with a slave judged from its own side: a rebuild it needs is refused
 * while the master cannot be inspected, and a master's inactive dbrepl_ slots are said on
 * the plan even when the slave is down.
 */
import { formatDuration, parseDuration } from '../../src/config/schema';
import type { Inspection } from '../../src/engines/engine';
import { diverged, linkDown } from '../../src/engines/link';
import type { RedisFacts } from '../../src/engines/redis/inspect';
import type { PgFacts } from '../../src/engines/postgresql/inspect';
import { slotName } from '../../src/engines/postgresql/state';
import { planPairs } from '../../src/plan/diff';
import type { Pair, Server, Topology } from '../../src/model';
import { pair, server } from './helpers/build';

test('formatDuration writes seconds as the file would', () => {
  expect([0, 0.25, 1, 12, 59.6, 60, 90, 120, 3600, 3661, 86400, 90061].map(formatDuration)).toEqual(['0s', '250ms', '1s', '12s', '1m', '1m', '1m30s', '2m', '1h', '1h1m1s', '1d', '1d1h1m1s']);
  for (const s of ['2m', '90s', '1h', '7d', '250ms']) expect(formatDuration(parseDuration(s))).toBe(s === '90s' ? '1m30s' : s);
});

describe('linkDown', () => {
  const P = pair(server('a/m'), server('a/s'), { resyncAfterSeconds: 120 });
  const extras = { masterKeepsSlave: true };

  test('reconnecting up to and at resync_after; broken past it', () => {
    expect(linkDown(P, { seconds: 12, basis: 'measured' }, 'refused', extras)).toEqual({
      state: 'reconnecting', lagSeconds: null, lagBytes: null, masterKeepsSlave: true,
      error: 'link to the master down for 12s: refused; broken after resync_after 2m',
    });
    expect(linkDown(P, { seconds: 120, basis: 'measured' }, 'refused', extras).state).toBe('reconnecting');
    expect(linkDown(P, { seconds: 121, basis: 'measured' }, 'refused', extras)).toMatchObject({
      state: 'broken',
      error: 'link to the master down for 2m1s, longer than resync_after 2m: refused',
    });
  });

  test('bounds and unknowns say what they are; nothing missed is never broken; an unknown time never is either', () => {
    expect(linkDown(P, { seconds: 30, basis: 'at-most', note: 'since x' }, 'r', extras).error).toBe('link to the master down for at most 30s (since x): r; broken after resync_after 2m');
    expect(linkDown(P, { seconds: 30, basis: 'at-least' }, 'r', extras).error).toMatch(/down for at least 30s: r/);
    expect(linkDown(P, { seconds: 99999, basis: 'nothing-missed', note: 'all there' }, 'r', extras)).toMatchObject({ state: 'reconnecting', error: 'link to the master down (counted as 0s: all there): r; broken after resync_after 2m' });
    expect(linkDown(P, { seconds: null, basis: 'at-most' }, 'r', extras)).toMatchObject({ state: 'reconnecting', error: 'link to the master down for an unknown time: r; broken after resync_after 2m' });
  });

  test('diverged is broken with the reason as it is', () => {
    expect(diverged('timeline fork', { masterKeepsSlave: false })).toEqual({ state: 'broken', lagSeconds: null, lagBytes: null, masterKeepsSlave: false, error: 'timeline fork' });
  });
});

describe('planPairs with a master that cannot be inspected', () => {
  const M = server('shop/cache', { engine: 'redis', host: '10.0.1.5', port: 6379 });
  const S = server('shop/cache-replica', { engine: 'redis', host: '10.0.1.6', port: 6379 });
  const topo = (pairs: Pair[], servers: Server[]): Topology => ({ applications: [], servers: new Map(servers.map((s) => [s.ref, s])), pairs, prune: false });
  const replica = { role: 'slave', masterHost: '10.0.1.5', masterPort: 6379, linkUp: false, syncInProgress: false, linkDownSeconds: 30, uptimeSeconds: 100 } as RedisFacts;
  const plan = (p: Pair) =>
    planPairs({
      topology: topo([p], [M, S]),
      selected: [p],
      inspections: new Map<string, Inspection>([
        [M.ref, { ok: false, server: M, error: 'connect ECONNREFUSED' }],
        [S.ref, { ok: true, server: S, facts: replica }],
      ]),
      stamp: 's',
      mode: { kind: 'converge' },
      env: {},
    })[0]!;

  test('reconnecting: nothing to do, no error', () => {
    expect(plan(pair(M, S))).toMatchObject({ live: 'reconnecting', action: 'none', error: null, steps: [] });
  });

  test('broken: the plan says resync, and refuses it until the master answers', () => {
    const row = plan(pair(M, S, { resyncAfterSeconds: 1 }));
    expect(row).toMatchObject({ live: 'broken', action: 'resync' });
    expect(row.error).toBe('cannot resync while a side cannot be inspected (shop/cache unreachable: connect ECONNREFUSED); plan again once it answers');
  });
});

test("a PostgreSQL master's inactive slot is said on its pair's plan row, even with the slave down", () => {
  const M = server('shop/pg-main', { host: '10.0.1.5' });
  const S = server('shop/pg-replica', { host: '10.0.1.6' });
  const p = pair(M, S);
  const m = {
    inRecovery: false, lsn: '0/5000000', maxSlotWalKeepBytes: null, systemId: '1', dataDirectory: '/d', port: 5432, startTime: '1',
    slots: [{ name: slotName(p), type: 'physical', active: false, activePid: null, restartLsn: '0/3000000', walStatus: 'reserved' }],
  } as unknown as PgFacts;
  const [row] = planPairs({
    topology: { applications: [], servers: new Map([[M.ref, M], [S.ref, S]]), pairs: [p], prune: false },
    selected: [p],
    inspections: new Map<string, Inspection>([
      [M.ref, { ok: true, server: M, facts: m }],
      [S.ref, { ok: false, server: S, error: 'connection refused' }],
    ]),
    stamp: 's',
    mode: { kind: 'converge' },
    env: {},
  });
  expect(row).toMatchObject({ live: 'unreachable', action: 'none' });
  expect(row!.warnings).toContain(`replication slot ${slotName(p)} on shop/pg-main (this pair's) is inactive and holds 32.0 MiB of WAL there, without limit (max_slot_wal_keep_size -1): the master keeps that WAL until shop/pg-replica streams again`);
});
