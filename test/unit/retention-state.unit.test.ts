/**
 * Plan-time retention warnings (pure parts): can the master keep what is written while a
 * slave is copied? PostgreSQL: the WAL (max_slot_wal_keep_size, free disk); MySQL: the binary
 * logs (expiry, free disk); Redis: the replica output buffer during the full sync and the
 * backlog for an outage of up to resync_after. The copy's duration is estimated at 50 MiB/s.
 */
import { binlogExpirySeconds, binlogRetentionWarnings } from '../../src/engines/mysql/preflight';
import { walRetentionWarnings } from '../../src/engines/postgresql/preflight';
import type { RedisFacts } from '../../src/engines/redis/inspect';
import { bufferRefusal, syncWarnings } from '../../src/engines/redis/state';
import { copySecondsEstimate, during, highestRate, sampleRate } from '../../src/engines/retention';
import { pair, server } from './helpers/build';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

test('the copy is estimated at 50 MiB/s, at least a second', () => {
  expect(copySecondsEstimate(0)).toBe(1);
  expect(copySecondsEstimate(50 * MiB)).toBe(1);
  expect(copySecondsEstimate(10 * GiB)).toBe(205);
  expect(during(2 * MiB, 150)).toBe('~300.0 MiB (2.0 MiB/s for ~2m30s)');
  expect(highestRate(null, 3, undefined, 7, NaN, -1)).toBe(7);
  expect(highestRate(null)).toBeNull();
});

test('sampleRate: two readings apart, null when a reading is missing or goes back', async () => {
  let v = 1000;
  const rate = await sampleRate(async () => (v += 500), 20);
  expect(rate).toBeGreaterThan(0);
  expect(await sampleRate(async () => null, 1)).toBeNull();
  let w = 10;
  expect(await sampleRate(async () => (w -= 5), 1)).toBeNull();
});

test('sampleRate from an earlier reading (the inspection\'s): only the rest of the interval is waited for', async () => {
  const t0 = Date.now();
  const rate = await sampleRate(async () => 3000, 2000, { value: 1000, at: t0 - 3000 });
  // 2000 bytes over ~3 s, read at once: the 2 s interval had passed (a wait would take 2 s).
  expect(Date.now() - t0).toBeLessThan(1000);
  expect(rate).toBeGreaterThan(500);
  expect(rate).toBeLessThan(700);
  const t1 = Date.now();
  await sampleRate(async () => 3000, 300, { value: 1000, at: t1 });
  expect(Date.now() - t1).toBeGreaterThanOrEqual(290);
});

describe('PostgreSQL: the WAL written during the copy', () => {
  const P = pair(server('shop/pg-main'), server('shop/pg-replica'));
  const opts = { copySeconds: 200, walBytesPerSecond: 5 * MiB, freeBytes: null as number | null };

  test('more than max_slot_wal_keep_size: the slot can be invalidated', () => {
    const [w] = walRetentionWarnings(P, { maxSlotWalKeepBytes: 512 * MiB }, opts);
    expect(w).toBe('shop/pg-main writes ~1000.0 MiB (5.0 MiB/s for ~3m20s) of WAL during the estimated copy, more than its max_slot_wal_keep_size (512.0 MiB): the slot dbrepl_shop__pg_replica can be invalidated before shop/pg-replica streams from it, and the new slave would be broken at once; raise max_slot_wal_keep_size first');
    expect(walRetentionWarnings(P, { maxSlotWalKeepBytes: 2 * GiB }, opts)).toEqual([]);
    expect(walRetentionWarnings(P, { maxSlotWalKeepBytes: null }, opts)).toEqual([]);
  });

  test("more than the master's free disk", () => {
    expect(walRetentionWarnings(P, { maxSlotWalKeepBytes: null }, { ...opts, freeBytes: 300 * MiB })).toEqual([
      'shop/pg-main has 300.0 MiB free for pg_wal, less than the WAL it writes during the estimated copy (~1000.0 MiB (5.0 MiB/s for ~3m20s)), which the slot dbrepl_shop__pg_replica keeps: free space there first',
    ]);
  });

  test('an idle master: nothing to say', () => {
    expect(walRetentionWarnings(P, { maxSlotWalKeepBytes: 1 }, { ...opts, walBytesPerSecond: 0, freeBytes: 0 })).toEqual([]);
  });
});

describe('MySQL: the binary logs from the dump position', () => {
  const P = pair(server('billing/db', { engine: 'mysql' }), server('reports/db', { engine: 'mysql' }));

  test('the expiry in force', () => {
    expect(binlogExpirySeconds({ binlog_expire_logs_seconds: '2592000', expire_logs_days: '0' })).toBe(2592000);
    expect(binlogExpirySeconds({ binlog_expire_logs_seconds: '0', expire_logs_days: '0.500000' })).toBe(43200);
    expect(binlogExpirySeconds({ binlog_expire_logs_seconds: '0', expire_logs_days: '0.000000' })).toBeNull();
    expect(binlogExpirySeconds({ binlog_expire_logs_seconds: '600', binlog_expire_logs_auto_purge: 'OFF' })).toBeNull();
    expect(binlogExpirySeconds({})).toBeNull();
  });

  test('an expiry shorter than the copy', () => {
    expect(binlogRetentionWarnings(P, { expireSeconds: 600, copySeconds: 1800, binlogBytesPerSecond: null, freeBytes: null, dir: null })).toEqual([
      "billing/db expires its binary logs after 10m (binlog_expire_logs_seconds / expire_logs_days), less than the estimated copy (~30m): the logs from the dump's position can be purged before reports/db starts replicating, which would then stop on error 1236; raise it first",
    ]);
    expect(binlogRetentionWarnings(P, { expireSeconds: 3600, copySeconds: 1800, binlogBytesPerSecond: null, freeBytes: null, dir: null })).toEqual([]);
    expect(binlogRetentionWarnings(P, { expireSeconds: null, copySeconds: 1800, binlogBytesPerSecond: null, freeBytes: null, dir: null })).toEqual([]);
  });

  test('binary logs written during the copy that the disk cannot hold', () => {
    expect(binlogRetentionWarnings(P, { expireSeconds: null, copySeconds: 100, binlogBytesPerSecond: 2 * MiB, freeBytes: 100 * MiB, dir: '/var/lib/mysql' })).toEqual([
      'billing/db has 100.0 MiB free in /var/lib/mysql, less than the binary logs it writes during the estimated copy (~200.0 MiB (2.0 MiB/s for ~1m40s)): free space there first',
    ]);
    expect(binlogRetentionWarnings(P, { expireSeconds: null, copySeconds: 100, binlogBytesPerSecond: 2 * MiB, freeBytes: GiB, dir: '/var/lib/mysql' })).toEqual([]);
  });
});

describe('Redis: the replica output buffer during the full sync, the backlog for an outage', () => {
  const P = pair(server('shop/cache', { engine: 'redis' }), server('shop/cache-replica', { engine: 'redis' }), { resyncAfterSeconds: 120 });
  const m = (over: Partial<RedisFacts> = {}): RedisFacts =>
    ({ usedMemory: 5 * GiB, replBacklogSize: 1 * GiB, replicaBufferLimit: { hard: 256 * MiB, soft: 64 * MiB, seconds: 60 }, ...over }) as RedisFacts;

  test('writes during the sync over the hard limit: a refusal (forceable), not a warning', () => {
    // 5 GiB at 50 MiB/s: ~103 s; 4 MiB/s of writes: ~412 MiB buffered.
    expect(syncWarnings(P, m(), 4 * MiB)).toEqual([]);
    expect(bufferRefusal(P, m({ usedMemory: 100 * MiB }), 4 * MiB)).toBeNull();
    // 200 MiB at 50 MiB/s: ~4 s; 100 MiB/s of writes: ~400 MiB buffered, over 256 MiB.
    expect(bufferRefusal(P, m({ usedMemory: 200 * MiB }), 100 * MiB)).toMatch(
      /^shop\/cache: the writes buffered for shop\/cache-replica during the estimated full sync \(~400\.0 MiB \(100\.0 MiB\/s for ~4s\)\) exceed client-output-buffer-limit replica hard limit 256\.0 MiB: .*raise it on shop\/cache/,
    );
    // A hard limit below the dataset: refused whatever the rate.
    expect(bufferRefusal(P, m({ usedMemory: 300 * MiB, replicaBufferLimit: { hard: 256 * MiB, soft: 0, seconds: 0 } }), null)).toMatch(/hard limit 256\.0 MiB is below the dataset \(300\.0 MiB\)/);
    expect(bufferRefusal(P, m({ replicaBufferLimit: { hard: 0, soft: 0, seconds: 0 } }), 4 * MiB)).toBeNull();
  });

  test('over the soft limit for longer than its seconds', () => {
    expect(syncWarnings(P, m({ replicaBufferLimit: { hard: 0, soft: 64 * MiB, seconds: 60 } }), 1 * MiB)[0]).toMatch(/stay over client-output-buffer-limit replica soft limit 64\.0 MiB for more than 60s/);
    // A sync shorter than the soft limit's seconds cannot trip it.
    expect(syncWarnings(P, m({ usedMemory: GiB, replicaBufferLimit: { hard: 0, soft: 1 * MiB, seconds: 60 } }), 1 * MiB)).toEqual([]);
  });

  test('a backlog that cannot hold resync_after of writes', () => {
    expect(syncWarnings(P, m({ replBacklogSize: 16 * MiB, replicaBufferLimit: { hard: 0, soft: 0, seconds: 0 } }), 1 * MiB)).toEqual([
      'shop/cache: repl-backlog-size 16.0 MiB holds ~16s of writes at 1.0 MiB/s, less than resync_after 2m: a link down for longer resumes only with a full sync; raise it to ~120.0 MiB',
    ]);
  });

  test('no writes, or no rate: nothing to say', () => {
    expect(syncWarnings(P, m({ replBacklogSize: 1 }), 0)).toEqual([]);
    expect(syncWarnings(P, m({ replBacklogSize: 1 }), null)).toEqual([]);
  });
});
