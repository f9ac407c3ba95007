import { bufferWarnings, pairState } from '../../src/engines/redis/state';
import type { RedisFacts } from '../../src/engines/redis/inspect';
import type { Inspection } from '../../src/engines/engine';
import type { Pair, Server } from '../../src/topology';
import { parseFields, parseInfo } from '../../src/engines/redis/client';

const srv = (ref: string, host: string, port: number): Server => ({ ref, app: ref.split('/')[0]!, name: ref.split('/')[1]!, engine: 'redis', host, port, replicaSet: 'rs0' });
const M = srv('shop/redis-main', '10.0.1.5', 6379);
const S = srv('shop/redis-replica', '10.0.1.6', 6380);
const P: Pair = { name: S.ref, index: 0, engine: 'redis', master: M, slave: S, desired: 'enabled', resync: 'auto', maxLagSeconds: 30, resyncAfterSeconds: 120, catchupTimeoutSeconds: 60, replication: {} };
const GiB = 2 ** 30;

function facts(over: Partial<RedisFacts> = {}): RedisFacts {
  return {
    version: '7.0.15', role: 'master', masterHost: null, masterPort: null, linkUp: false, syncInProgress: false, syncBytes: null, linkDownSeconds: null,
    lastIoSecondsAgo: null, uptimeSeconds: 3600, masterOffset: 1000, replicaOffset: null, dir: '/var/lib/redis', dbfilename: 'dump.rdb', replicas: [],
    usedMemory: 10 * 1024 * 1024, replBacklogSize: 1024 * 1024, replicaBufferLimit: { hard: 256 * 1024 * 1024, soft: 64 * 1024 * 1024, seconds: 60 },
    configFile: '/etc/redis/redis.conf', processId: 1, syncFull: 0, runId: 'a'.repeat(40), tlsReplication: false, tlsCertFile: '', tlsCaCertFile: '', ...over,
  };
}
const ok = (s: Server, f: RedisFacts): Inspection<RedisFacts> => ({ ok: true, server: s, facts: f });
const replicaOf = (over: Partial<RedisFacts> = {}) => facts({ role: 'slave', masterHost: '10.0.1.5', masterPort: 6379, linkUp: true, replicaOffset: 1000, ...over });
const servingMaster = (lag = 0, offset = 1000) => facts({ masterOffset: offset, replicas: [{ ip: '10.0.1.6', port: 6380, state: 'online', offset: 1000, lag }] });

test('INFO and slave lines parse', () => {
  expect(parseInfo('# Replication\r\nrole:slave\r\nmaster_host:10.0.1.5\r\n')).toEqual({ role: 'slave', master_host: '10.0.1.5' });
  expect(parseFields('ip=10.0.1.6,port=6380,state=online,offset=42,lag=1')).toEqual({ ip: '10.0.1.6', port: '6380', state: 'online', offset: '42', lag: '1' });
});

test('states from both sides', () => {
  expect(pairState(P, ok(M, servingMaster()), ok(S, facts())).state).toBe('standalone');
  expect(pairState(P, ok(M, servingMaster()), ok(S, replicaOf()))).toMatchObject({ state: 'replicating', lagBytes: 0, lagSeconds: 0 });
  expect(pairState(P, ok(M, servingMaster(45, 5000)), ok(S, replicaOf()))).toMatchObject({ state: 'lagging', lagBytes: 4000, lagSeconds: 45 });
  // Following 10.0.9.9 (the declared master does not list it as a replica):
  expect(pairState(P, ok(M, facts()), ok(S, replicaOf({ masterHost: '10.0.9.9' })))).toMatchObject({ state: 'other-master' });
  // The declared master under another name (it lists this replica): still following it.
  expect(pairState(P, ok(M, servingMaster()), ok(S, replicaOf({ masterHost: 'redis-main.internal' }))).state).toBe('replicating');
  // A link down: reconnecting until resync_after (Redis keeps no reason, only master_link_down_since_seconds).
  expect(pairState(P, ok(M, servingMaster()), ok(S, replicaOf({ linkUp: false, linkDownSeconds: 12 })))).toMatchObject({
    state: 'reconnecting',
    error: expect.stringMatching(/^link to the master down for 12s: the replica is reconnecting .*; broken after resync_after 2m$/),
  });
  expect(pairState(P, ok(M, servingMaster()), ok(S, replicaOf({ linkUp: false, linkDownSeconds: 121 })))).toMatchObject({
    state: 'broken',
    error: expect.stringMatching(/^link to the master down for 2m1s, longer than resync_after 2m: /),
  });
  // A first sync under way is following, not broken; one that never finishes is broken.
  expect(pairState(P, ok(M, servingMaster()), ok(S, replicaOf({ linkUp: false, syncInProgress: true, linkDownSeconds: 5 }))).state).toBe('lagging');
  expect(pairState(P, ok(M, servingMaster()), ok(S, replicaOf({ linkUp: false, syncInProgress: true, linkDownSeconds: 600 })))).toMatchObject({ state: 'broken', error: expect.stringMatching(/full sync not finishing/) });
  expect(pairState(P, { ok: false, server: M, error: 'ECONNREFUSED' }, ok(S, replicaOf()))).toMatchObject({ state: 'unreachable', error: 'shop/redis-main unreachable: ECONNREFUSED' });
});

test('the plan warns when a full sync would loop or a short disconnect needs a full sync', () => {
  expect(bufferWarnings(M, facts())).toEqual([]);
  // The hard limit below the dataset is a refusal (bufferRefusal), not among the warnings.
  const big = bufferWarnings(M, facts({ usedMemory: 1.2 * GiB }));
  expect(big).toEqual([expect.stringMatching(/repl-backlog-size 1\.0 MiB is small for a 1\.2 GiB dataset/)]);
  expect(bufferWarnings(M, facts({ usedMemory: 1.2 * GiB, replicaBufferLimit: { hard: 0, soft: 0, seconds: 0 }, replBacklogSize: 64 * 1024 * 1024 }))).toEqual([]);
});

test('a master that cannot be inspected: its replica with the link down is reconnecting, then broken, by master_link_down_since_seconds', () => {
  const gone = { ok: false as const, server: M, error: 'connect ECONNREFUSED 10.0.1.5:6379' };
  const r = pairState(P, gone, ok(S, replicaOf({ linkUp: false, linkDownSeconds: 3 })));
  expect(r).toMatchObject({ state: 'reconnecting', lagSeconds: null, lagBytes: null });
  expect(r.error).toBe('link to the master down for 3s: the replica is reconnecting (Redis retries every second); shop/redis-main unreachable: connect ECONNREFUSED 10.0.1.5:6379; broken after resync_after 2m');
  expect(pairState({ ...P, resyncAfterSeconds: 1 }, gone, ok(S, replicaOf({ linkUp: false, linkDownSeconds: 3 }))).state).toBe('broken');
  // Still unreachable: a replica whose link is up, one in a sync, one following another server, a master.
  expect(pairState(P, gone, ok(S, replicaOf())).state).toBe('unreachable');
  expect(pairState(P, gone, ok(S, replicaOf({ linkUp: false, syncInProgress: true, linkDownSeconds: 3 }))).state).toBe('unreachable');
  expect(pairState(P, gone, ok(S, replicaOf({ linkUp: false, masterHost: '10.0.9.9', linkDownSeconds: 3 }))).state).toBe('unreachable');
  expect(pairState(P, gone, ok(S, facts())).state).toBe('unreachable');
});

test('a link not up since the replica started (-1): down at least as long as the replica has run', () => {
  const r = pairState(P, ok(M, servingMaster()), ok(S, replicaOf({ linkUp: false, linkDownSeconds: -1, uptimeSeconds: 30 })));
  expect(r.state).toBe('reconnecting');
  expect(r.error).toMatch(/^link to the master down for at least 30s \(not linked since the replica started\)/);
  expect(pairState(P, ok(M, servingMaster()), ok(S, replicaOf({ linkUp: false, linkDownSeconds: -1, uptimeSeconds: 600 }))).state).toBe('broken');
});
