/**
 * PostgreSQL: a standby whose WAL receiver is not streaming. A blip (the master restarting or
 * out of reach) is `reconnecting` until resync_after; a divergence (timeline fork, its slot
 * lost or dropped, WAL it needs removed) is `broken` at once. How long the link has been down
 * is read from what the servers keep (PostgreSQL 15 has no "down since"). Also: the plan's
 * warnings about inactive dbrepl_ slots and the WAL they hold.
 */
import type { Inspection } from '../../src/engines/engine';
import type { PgFacts } from '../../src/engines/postgresql/inspect';
import { parseTimelineHistory } from '../../src/engines/postgresql/inspect';
import { outageOf, pairState, segmentNumber, slotName, slotWarnings } from '../../src/engines/postgresql/state';
import type { Pair, Server } from '../../src/model';
import { pair, server } from './helpers/build';

const MASTER = server('shop/pg-main', { host: '10.0.1.5', port: 5432 });
const SLAVE = server('shop/pg-replica', { host: '10.0.1.6', port: 5432 });
const P = pair(MASTER, SLAVE, { resyncAfterSeconds: 120 });
const SLOT = slotName(P);
const MiB = 1024 * 1024;

function facts(over: Partial<PgFacts> = {}): PgFacts {
  return {
    versionNum: 150004, port: 5432, startEpoch: 1764000000, startTime: '1764000000.1', standbyMinimums: {}, inRecovery: false,
    systemId: '7300000000000000001', dataDirectory: '/var/lib/postgresql/15/main', configFile: '/etc/postgresql/15/main/postgresql.conf',
    hbaFile: '/etc/postgresql/15/main/pg_hba.conf', identFile: '/etc/postgresql/15/main/pg_ident.conf', walLevel: 'replica',
    maxWalSenders: 10, maxReplicationSlots: 10, ssl: false, passwordEncryption: 'scram-sha-256',
    lsn: '0/3000060', receiveLsn: null, walWriteAgeSeconds: null, timeline: 1, timelineHistory: [], oldestWalSegment: '0000000000000003',
    walSegmentSize: 16 * MiB, hasRestoreCommand: false, maxSlotWalKeepBytes: null, replayAgeSeconds: null, upstream: null,
    primarySlotName: null, receiver: null, clients: [], slots: [], hbaRules: [],
    ...over,
  };
}
const slot = (over: Partial<PgFacts['slots'][number]> = {}): PgFacts['slots'][number] => ({ name: SLOT, type: 'physical', active: false, activePid: null, restartLsn: '0/3000000', walStatus: 'reserved', ...over });
/** A primary that keeps the slave's slot, nobody streaming from it. */
const master = (over: Partial<PgFacts> = {}): PgFacts => facts({ slots: [slot()], ...over });
/** A standby of 10.0.1.5:5432 through the slot, its receiver not running. */
const cutOff = (over: Partial<PgFacts> = {}): PgFacts =>
  facts({
    inRecovery: true, lsn: '0/3000060', receiveLsn: '0/3000060', upstream: { host: '10.0.1.5', port: 5432, applicationName: SLOT },
    primarySlotName: SLOT, receiver: null, walWriteAgeSeconds: 12, replayAgeSeconds: 40, ...over,
  });
const ok = (s: Server, f: PgFacts): Inspection<PgFacts> => ({ ok: true, server: s, facts: f });
const down = (s: Server, error: string): Inspection<PgFacts> => ({ ok: false, server: s, error });

describe('a standby of the declared master that is not streaming', () => {
  test('the master stopped (cannot be inspected): reconnecting, for as long as the slave has not received WAL', () => {
    const r = pairState(P, down(MASTER, 'cannot connect to PostgreSQL at 10.0.1.5:5432: connect ECONNREFUSED'), ok(SLAVE, cutOff()));
    expect(r).toMatchObject({ state: 'reconnecting', lagSeconds: null, masterKeepsSlave: false });
    expect(r.error).toBe(
      'link to the master down for at most 12s (since the slave last received WAL): no WAL receiver is running (the standby retries every wal_retrieve_retry_interval); shop/pg-main unreachable: cannot connect to PostgreSQL at 10.0.1.5:5432: connect ECONNREFUSED; broken after resync_after 2m',
    );
  });

  test('... and broken once that is longer than resync_after', () => {
    const r = pairState(P, down(MASTER, 'ECONNREFUSED'), ok(SLAVE, cutOff({ walWriteAgeSeconds: 125, replayAgeSeconds: 600 })));
    expect(r.state).toBe('broken');
    expect(r.error).toMatch(/^link to the master down for at most 2m5s \(since the slave last received WAL\), longer than resync_after 2m: no WAL receiver/);
    expect(pairState({ ...P, resyncAfterSeconds: 1 }, down(MASTER, 'x'), ok(SLAVE, cutOff({ walWriteAgeSeconds: 2 }))).state).toBe('broken');
  });

  test('the smaller of the two upper bounds is used; none known: reconnecting for an unknown time', () => {
    expect(outageOf(null, cutOff({ walWriteAgeSeconds: null, replayAgeSeconds: 30 }))).toMatchObject({ seconds: 30, basis: 'at-most' });
    expect(outageOf(null, cutOff({ walWriteAgeSeconds: 50, replayAgeSeconds: 30 }))).toMatchObject({ seconds: 30 });
    const r = pairState(P, down(MASTER, 'x'), ok(SLAVE, cutOff({ walWriteAgeSeconds: null, replayAgeSeconds: null })));
    expect(r.state).toBe('reconnecting');
    expect(r.error).toMatch(/down for an unknown time/);
  });

  test('the master answers and has nothing the slave lacks (idle, or back from a restart): counted as 0 s, however long', () => {
    const r = pairState(P, ok(MASTER, master({ lsn: '0/3000060' })), ok(SLAVE, cutOff({ walWriteAgeSeconds: 9999, replayAgeSeconds: 9999 })));
    expect(r.state).toBe('reconnecting');
    expect(r.error).toMatch(/^link to the master down \(counted as 0s: the slave has all the WAL the master has \(0\/3000060\)\): no WAL receiver is running/);
    expect(r.masterKeepsSlave).toBe(true);
  });

  test('the master answers and has WAL the slave lacks: the upper bound counts', () => {
    const m = master({ lsn: '0/4000000' });
    expect(pairState(P, ok(MASTER, m), ok(SLAVE, cutOff({ walWriteAgeSeconds: 30 }))).state).toBe('reconnecting');
    const r = pairState(P, ok(MASTER, m), ok(SLAVE, cutOff({ walWriteAgeSeconds: 300, replayAgeSeconds: 900 })));
    expect(r.state).toBe('broken');
    expect(r.error).toMatch(/down for at most 5m .*longer than resync_after 2m/);
  });

  test('a receiver that is starting or waiting counts as down too', () => {
    const r = pairState(P, ok(MASTER, master({ lsn: '0/4000000' })), ok(SLAVE, cutOff({ receiver: { status: 'starting', senderHost: '10.0.1.5', senderPort: 5432, slotName: SLOT } })));
    expect(r.state).toBe('reconnecting');
    expect(r.error).toContain('the WAL receiver is starting');
  });

  test('a standby streaming from the declared master while the master cannot be inspected is still unreachable', () => {
    const streaming = cutOff({ receiver: { status: 'streaming', senderHost: '10.0.1.5', senderPort: 5432, slotName: SLOT } });
    expect(pairState(P, down(MASTER, 'timeout'), ok(SLAVE, streaming)).state).toBe('unreachable');
    // ... and so is one that follows another server, or a standalone one.
    expect(pairState(P, down(MASTER, 'timeout'), ok(SLAVE, cutOff({ upstream: { host: '10.0.9.9', port: 5432, applicationName: null } }))).state).toBe('unreachable');
    expect(pairState(P, down(MASTER, 'timeout'), ok(SLAVE, facts())).state).toBe('unreachable');
  });
});

describe('divergence: broken at once, whatever resync_after says', () => {
  const brokenBecause = (m: PgFacts, s: PgFacts): string => {
    const r = pairState({ ...P, resyncAfterSeconds: 86400 }, ok(MASTER, m), ok(SLAVE, s));
    expect(r.state).toBe('broken');
    return r.error!;
  };

  test('its slot is lost on the master (max_slot_wal_keep_size)', () => {
    expect(brokenBecause(master({ slots: [slot({ walStatus: 'lost', restartLsn: null })] }), cutOff())).toBe(
      `slave cannot follow shop/pg-main again: its replication slot ${SLOT} on the master is lost (wal_status lost): WAL it still needed was removed (max_slot_wal_keep_size)`,
    );
  });

  test('its slot was dropped on the master', () => {
    expect(brokenBecause(facts(), cutOff())).toMatch(new RegExp(`streams through the replication slot ${SLOT}, which the master does not have`));
  });

  test('timeline fork: the slave was promoted (a newer timeline than the master)', () => {
    expect(brokenBecause(master(), cutOff({ timeline: 2 }))).toMatch(/timeline fork: the slave is on timeline 2, newer than the master's 1/);
  });

  test("timeline fork: the slave's timeline is not in the master's history", () => {
    const m = master({ timeline: 3, timelineHistory: [{ tli: 2, switchpoint: '0/5000000' }] });
    expect(brokenBecause(m, cutOff({ timeline: 1 }))).toMatch(/timeline 1 is not in the master's history \(timeline 3\)/);
  });

  test('timeline fork: the slave went past the point where the master left its timeline', () => {
    const m = master({ timeline: 2, lsn: '0/6000000', timelineHistory: [{ tli: 1, switchpoint: '0/3000000' }] });
    expect(brokenBecause(m, cutOff({ receiveLsn: '0/3000100' }))).toMatch(/the slave is at 0\/3000100 on timeline 1, past 0\/3000000 where the master's history left that timeline/);
  });

  test('a slave behind the switch point follows the new timeline: not broken', () => {
    const m = master({ timeline: 2, lsn: '0/6000000', timelineHistory: [{ tli: 1, switchpoint: '0/3000000' }] });
    expect(pairState(P, ok(MASTER, m), ok(SLAVE, cutOff({ receiveLsn: '0/2FFFF00', lsn: '0/2FFFF00' }))).state).toBe('reconnecting');
  });

  test('the slave is ahead of the master on the same timeline', () => {
    expect(brokenBecause(master({ lsn: '0/3000000' }), cutOff({ receiveLsn: '0/3000060' }))).toMatch(/ahead of the master's WAL on timeline 1 \(slave at 0\/3000060, master at 0\/3000000\)/);
  });

  test('WAL it needs removed from the master, no slot and no restore_command', () => {
    const s = cutOff({ primarySlotName: null, receiveLsn: '0/2000010', lsn: '0/2000010' });
    expect(brokenBecause(facts({ lsn: '0/5000000', oldestWalSegment: '0000000000000003' }), s)).toMatch(/has already been removed/);
    // With a restore_command the archive may have it; with the WAL still there it is a blip.
    expect(pairState(P, ok(MASTER, facts({ lsn: '0/5000000', oldestWalSegment: '0000000000000003' })), ok(SLAVE, { ...s, hasRestoreCommand: true })).state).toBe('reconnecting');
    expect(pairState(P, ok(MASTER, facts({ lsn: '0/5000000', oldestWalSegment: '0000000000000002' })), ok(SLAVE, s)).state).toBe('reconnecting');
  });

  test('WAL segment names and timeline history files are read', () => {
    expect(segmentNumber('0000000000000003', 16 * MiB)).toBe(3n);
    expect(segmentNumber('00000001000000A0', 16 * MiB)).toBe(256n + 160n);
    expect(segmentNumber('0000000100000001', 64 * MiB)).toBe(65n);
    expect(parseTimelineHistory('1\t0/3000000\tno recovery target specified\n\n2\t0/5A0001F8\tbefore 2026-01-01\n')).toEqual([
      { tli: 1, switchpoint: '0/3000000' },
      { tli: 2, switchpoint: '0/5A0001F8' },
    ]);
  });
});

describe('inactive dbrepl_ slots in the plan', () => {
  const OTHER = server('shop/pg-old', { host: '10.0.1.9' });
  const DR = server('dr/pg', { host: '10.0.2.5' });
  const Q = pair(MASTER, DR, { name: 'dr' });
  const identity = (s: Server): string => `${s.host}:${s.port}`;
  const warn = (declared: Pair[], selected: Pair[], m: PgFacts) => slotWarnings(declared, selected, (s) => (s.ref === MASTER.ref ? m : null), identity);

  test("a pair's own inactive slot: said on that pair, with the WAL it holds", () => {
    const m = master({ lsn: '0/5000000', slots: [slot({ restartLsn: '0/3000000' })] });
    expect(warn([P], [P], m)).toEqual(
      new Map([[P.name, [`replication slot ${SLOT} on shop/pg-main (this pair's) is inactive and holds 32.0 MiB of WAL there, without limit (max_slot_wal_keep_size -1): the master keeps that WAL until shop/pg-replica streams again`]]]),
    );
  });

  test("another declared pair's slot is said on that pair only; an active slot or one not made by dbrepl is not said", () => {
    const m = master({ slots: [slot({ name: slotName(Q) }), slot({ name: 'barman', active: false }), slot({ active: true, activePid: 7 })] });
    const out = warn([P, Q], [P, Q], m);
    expect([...out.keys()]).toEqual(['dr']);
    expect(out.get('dr')![0]).toMatch(/^replication slot dbrepl_dr__pg on shop\/pg-main \(this pair's\) is inactive and holds 96 B of WAL/);
    // Not selected (--only): not said.
    expect(warn([P, Q], [P], m).size).toBe(0);
  });

  test('a slot no declared pair owns: said once, on the first selected pair of that master, naming how to drop it', () => {
    const orphan = pair(MASTER, OTHER);
    const m = master({ lsn: '0/3100000', maxSlotWalKeepBytes: 1024 * MiB, slots: [slot({ name: slotName(orphan), restartLsn: '0/3000000' })] });
    const out = warn([P, Q], [P, Q], m);
    expect([...out.keys()]).toEqual([P.name]);
    expect(out.get(P.name)).toEqual([
      "replication slot dbrepl_shop__pg_old on shop/pg-main is inactive, holds 1.0 MiB of WAL there, up to max_slot_wal_keep_size 1.0 GiB, and no pair of the file owns it (its slave is no longer declared?): if nothing uses it, drop it there with SELECT pg_drop_replication_slot('dbrepl_shop__pg_old')",
    ]);
  });

  test('lost and unreserved slots say so', () => {
    expect(warn([P], [P], master({ slots: [slot({ walStatus: 'lost', restartLsn: null })] })).get(P.name)![0]).toMatch(/is inactive and is lost \(wal_status lost/);
    expect(warn([P], [P], master({ slots: [slot({ walStatus: 'unreserved' })] })).get(P.name)![0]).toMatch(/some of it goes at the next checkpoint/);
  });
});
