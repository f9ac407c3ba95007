/**
 * MongoDB: the live state of a pair from the primary's view of its set (pure), and the one
 * key dbrepl edits in mongod's YAML configuration file.
 */
import type { Inspection } from '../../src/engines/engine';
import type { MongoFacts, StatusMember } from '../../src/engines/mongodb/inspect';
import { replSetNameIn, withReplSetName } from '../../src/engines/mongodb/options';
import { identity, liveLinks, pairState, undeclaredMembers } from '../../src/engines/mongodb/state';
import { votersAfter } from '../../src/engines/mongodb/steps';
import { pair, server } from './helpers/build';

const M = server('catalog/mongo-a', { engine: 'mongodb', host: '10.0.5.5', port: 27017 });
const S = server('catalog/mongo-b', { engine: 'mongodb', host: '10.0.5.6', port: 27017 });
const P = pair(M, S, { maxLagSeconds: 30, resyncAfterSeconds: 120 });
const T0 = 1_764_000_000_000;

function facts(over: Partial<MongoFacts> = {}): MongoFacts {
  return {
    version: '7.0.14', host: 'db:27017', pid: 10, uptimeSeconds: 100, configFile: '/etc/mongod.conf', dbPath: '/var/lib/mongodb', port: 27017,
    replSetName: null, replSetFromArgv: false, setName: null, isWritablePrimary: true, secondary: false, primary: null, me: null, myState: null, notInitiated: false, removed: false,
    members: [], configVersion: null, configMembers: [], userDatabases: [], dataBytes: 0, ...over,
  };
}
const member = (over: Partial<StatusMember>): StatusMember => ({ _id: 1, name: '10.0.5.6:27017', health: 1, state: 2, stateStr: 'SECONDARY', self: false, optimeMs: T0, lastHeardSeconds: 0, lastHeartbeatMessage: '', ...over });
/** A primary whose set lists the slave, and the slave's status as the primary sees it. */
const primary = (slave: Partial<StatusMember>, votes = 1): MongoFacts =>
  facts({
    replSetName: 'rs0', setName: 'rs0', me: '10.0.5.5:27017', primary: '10.0.5.5:27017', myState: 1, configVersion: 3,
    configMembers: [
      { _id: 0, host: '10.0.5.5:27017', priority: 1, votes: 1, arbiterOnly: false, hidden: false },
      { _id: 1, host: '10.0.5.6:27017', priority: votes, votes, arbiterOnly: false, hidden: false },
    ],
    members: [member({ _id: 0, name: '10.0.5.5:27017', state: 1, stateStr: 'PRIMARY', self: true, lastHeardSeconds: null }), member(slave)],
  });
const secondary = facts({ replSetName: 'rs0', setName: 'rs0', isWritablePrimary: false, secondary: true, me: '10.0.5.6:27017', myState: 2 });
const ok = (f: MongoFacts, srv = M): Inspection<MongoFacts> => ({ ok: true, server: srv, facts: f });
const state = (m: MongoFacts, s: MongoFacts) => pairState(P, ok(m), ok(s, S));

test.each([
  ['a secondary within max_lag', primary({ optimeMs: T0 - 5000 }), 'replicating', 5],
  ['a secondary past max_lag', primary({ optimeMs: T0 - 45_000 }), 'lagging', 45],
  ['in initial sync (STARTUP2)', primary({ state: 5, stateStr: 'STARTUP2', optimeMs: 0 }), 'lagging', null],
  ['RECOVERING', primary({ state: 3, stateStr: 'RECOVERING' }), 'lagging', null],
  ['unreachable for 30 s (health 0)', primary({ health: 0, state: 8, stateStr: '(not reachable/healthy)', lastHeardSeconds: 30 }), 'reconnecting', null],
  ['unreachable for 10 min', primary({ health: 0, state: 8, stateStr: '(not reachable/healthy)', lastHeardSeconds: 600 }), 'broken', null],
] as const)('member %s', (_what, m, expected, lag) => {
  const live = state(m, secondary);
  expect(live.state).toBe(expected);
  expect(live.lagSeconds).toBe(lag);
  expect(live.masterKeepsSlave).toBe(true);
});

test('a non-voting secondary (votes 0) replicates: membership, not votes, is the pair', () => {
  expect(state(primary({}, 0), secondary).state).toBe('replicating');
});

test('not a member: standalone; a member of another set: other-master; started with a set name but in no config: broken', () => {
  const alone = facts({ replSetName: 'rs0', setName: 'rs0', me: '10.0.5.5:27017', configMembers: [{ _id: 0, host: '10.0.5.5:27017', priority: 1, votes: 1, arbiterOnly: false, hidden: false }] });
  expect(state(alone, facts()).state).toBe('standalone');
  expect(state(alone, facts({ replSetName: 'other', setName: 'other', primary: '10.0.9.9:27017' }))).toMatchObject({ state: 'other-master', error: expect.stringContaining('member of replica set other (primary 10.0.9.9:27017)') });
  expect(state(alone, facts({ replSetName: 'rs0', removed: true, isWritablePrimary: false }))).toMatchObject({ state: 'broken', error: expect.stringContaining('removed from its replica set (REMOVED)') });
  expect(state(facts(), facts())).toMatchObject({ state: 'standalone' });
});

test('a member is found by the name the set knows it by (me), not only the file\'s address', () => {
  const m = primary({ name: 'db-b.internal:27017' });
  m.configMembers[1]!.host = 'db-b.internal:27017';
  expect(state(m, { ...secondary, me: 'db-b.internal:27017' }).state).toBe('replicating');
});

test('voters after the enable; members the file does not declare; identity', () => {
  expect(votersAfter(facts(), P, facts(), 1)).toBe(2);
  expect(votersAfter(primary({}, 0), P, secondary, 1)).toBe(2);
  expect(undeclaredMembers(primary({}), [M])).toEqual(['10.0.5.6:27017']);
  expect(undeclaredMembers(primary({}), [M, S])).toEqual([]);
  expect(identity(facts())).toEqual({ key: 'db|/var/lib/mongodb|27017', text: 'host db:27017, dbPath /var/lib/mongodb, port 27017' });
});

test('the YAML edit sets or removes replication.replSetName only, keeping comments and other keys', () => {
  const text = '# mongod.conf\nstorage:\n  dbPath: /var/lib/mongodb  # data\nnet:\n  port: 27017\n';
  const on = withReplSetName(text, 'rs0');
  expect(replSetNameIn(on)).toBe('rs0');
  expect(on).toContain('# mongod.conf');
  expect(on).toMatch(/dbPath: \/var\/lib\/mongodb +# data/);
  const off = withReplSetName(on, null);
  expect(replSetNameIn(off)).toBeNull();
  expect(off).not.toContain('replication');
  expect(withReplSetName('replication:\n  oplogSizeMB: 990\n', null)).toBe('replication:\n  oplogSizeMB: 990\n');
  expect(() => withReplSetName('a: [unclosed', 'rs0')).toThrow(/not valid YAML/);
});

test('a slave restarted standalone by hand while the set still lists it: standalone, the set keeping it (not broken: resync --broken leaves it alone)', () => {
  const live = state(primary({ health: 0, state: 8, stateStr: '(not reachable/healthy)', lastHeardSeconds: 900 }), facts({ me: null }));
  expect(live).toMatchObject({ state: 'standalone', masterKeepsSlave: true });
  expect(live.error).toContain("rs0's config still lists it as 10.0.5.6:27017");
});

test('drift is membership: a declared server in the primary\'s config is a link from that primary', () => {
  expect(liveLinks([ok(primary({}))], [M, S])).toEqual([{ slave: S, master: M, upstream: 'rs0 member 10.0.5.6:27017' }]);
});
