/**
 * The MongoDB replica-set SIMULATOR itself (test/support/mongo-sim), through the official
 * driver: it must answer as a 7.0 server does (MONGODB.md of the lab notes), or the engine
 * tests that use it prove nothing. Each case is a server behaviour the engine depends on,
 * with the code and words the server uses. Against real mongod (DBREPL_MONGOD) the same
 * assertions run, so a difference between simulator and server shows there.
 */
import type { Document } from 'mongodb';
import { MongoLab, MongoNode } from '../support/mongo';
import { eventually } from '../support/sh';

jest.setTimeout(60_000);
const lab = new MongoLab();
beforeAll(() => lab.open());
afterAll(() => lab.close());

const refused = async (p: Promise<unknown>): Promise<{ code: number; codeName: string; errmsg: string }> => {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; codeName: string; errmsg?: string; message: string };
    return { code: e.code, codeName: e.codeName, errmsg: e.errmsg ?? e.message };
  }
  throw new Error('the command succeeded');
};
const config = async (n: MongoNode): Promise<Document> => (await n.command({ replSetGetConfig: 1 })).config as Document;
const primaryOf = (n: MongoNode) => eventually(async () => (await n.command({ hello: 1 })).isWritablePrimary === true, 20_000, `${n.port} primary`);

test('a standalone: hello without set fields; replSetGetStatus 76; replSetInitiate 76', async () => {
  const n = await lab.node();
  const hello = await n.command({ hello: 1 });
  expect(hello).toMatchObject({ isWritablePrimary: true, maxWireVersion: 21, ok: 1 });
  expect(hello.setName).toBeUndefined();
  expect(await refused(n.command({ replSetGetStatus: 1 }))).toMatchObject({ code: 76, codeName: 'NoReplicationEnabled' });
  expect(await refused(n.command({ replSetInitiate: {} }))).toMatchObject({ code: 76, errmsg: 'This node was not started with replication enabled.' });
});

test('started with a set name, not initiated: RSGhost hello, 94; initiate once (23 the second time); primary; version 1 term 1', async () => {
  const n = await lab.node({ replSetName: 'rsa' });
  expect(await n.command({ hello: 1 })).toMatchObject({ isWritablePrimary: false, secondary: false, isreplicaset: true, info: 'Does not have a valid replica set config' });
  expect(await refused(n.command({ replSetGetStatus: 1 }))).toMatchObject({ code: 94, codeName: 'NotYetInitialized' });
  expect(await refused(n.command({ replSetInitiate: { _id: 'other', version: 1, members: [{ _id: 0, host: `127.0.0.1:${n.port}` }] } }))).toMatchObject({ code: 93 });
  await n.command({ replSetInitiate: { _id: 'rsa', version: 1, members: [{ _id: 0, host: `127.0.0.1:${n.port}` }] } });
  expect(await refused(n.command({ replSetInitiate: {} }))).toMatchObject({ code: 23, codeName: 'AlreadyInitialized' });
  await primaryOf(n);
  expect(await config(n)).toMatchObject({ _id: 'rsa', version: 1, term: 1 });
  const st = await n.command({ replSetGetStatus: 1 });
  expect(st).toMatchObject({ set: 'rsa', myState: 1 });
  expect(st.members[0]).toMatchObject({ name: `127.0.0.1:${n.port}`, stateStr: 'PRIMARY', self: true, health: 1 });
});

describe('replSetReconfig validation, codes as the server gives them', () => {
  let p: MongoNode;
  let a: MongoNode;
  let b: MongoNode;
  beforeAll(async () => {
    [p, a, b] = [await lab.node({ replSetName: 'rsv' }), await lab.node({ replSetName: 'rsv' }), await lab.node({ replSetName: 'rsv' })];
    await p.command({ replSetInitiate: { _id: 'rsv', version: 1, members: [{ _id: 0, host: `127.0.0.1:${p.port}` }] } });
    await primaryOf(p);
    await p.insert('shop', 'orders', [{ _id: 1, v: 'before the members' }]);
  });
  const member = (n: MongoNode, id: number, extra: Document = {}): Document => ({ _id: id, host: `127.0.0.1:${n.port}`, ...extra });
  const reconfig = async (members: Document[], version?: number): Promise<Document> => {
    const cfg = await config(p);
    return p.command({ replSetReconfig: { ...cfg, version: version ?? cfg.version + 1, members } });
  };

  test('votes 0 with priority > 0: 93', async () => {
    const c = await config(p);
    expect(await refused(reconfig([...c.members, member(a, 1, { votes: 0, priority: 1 })]))).toMatchObject({ code: 93, errmsg: 'priority must be 0 when non-voting (votes:0)' });
  });
  test('a version that does not increase: 103', async () => {
    const c = await config(p);
    expect(await refused(reconfig([...c.members, member(a, 1, { votes: 0, priority: 0 })], c.version))).toMatchObject({ code: 103, errmsg: expect.stringMatching(/^New replica set configuration version and term must be greater than old/) });
  });
  test('two voting members more in one reconfig (existing non-voters raised): 103', async () => {
    const c = await config(p);
    await reconfig([...c.members, member(a, 1, { votes: 0, priority: 0 }), member(b, 2, { votes: 0, priority: 0 })]);
    const now = await config(p);
    const raised = now.members.map((m: Document) => (m._id === 0 ? m : { ...m, votes: 1, priority: 1 }));
    expect(await refused(reconfig(raised))).toMatchObject({ code: 103, errmsg: 'Non force replica set reconfig can only add or remove at most 1 voting member.' });
  });
  test('duplicate _id: 103; newlyAdded given: 93; a secondary: 10107', async () => {
    const c = await config(p);
    expect(await refused(reconfig([...c.members.slice(0, 2), { ...c.members[2], _id: 1 }]))).toMatchObject({ code: 103, errmsg: expect.stringMatching(/^Found two member configurations with same _id field/) });
    expect(await refused(reconfig(c.members.map((m: Document) => ({ ...m, newlyAdded: true }))))).toMatchObject({ code: 93, errmsg: 'Cannot provide newlyAdded field to member config during reconfig.' });
    await eventually(async () => (await a.command({ hello: 1 })).secondary === true, 20_000, 'a secondary');
    expect(await refused(a.command({ replSetReconfig: { ...c, version: c.version + 1 } }))).toMatchObject({ code: 10107, codeName: 'NotWritablePrimary' });
  });
  test('a new member walks STARTUP2 to SECONDARY and gets the data; it serves reads', async () => {
    await eventually(async () => (await b.command({ hello: 1 })).secondary === true, 20_000, 'b secondary');
    expect(await b.count('shop', 'orders')).toBe(1);
    const st = await p.command({ replSetGetStatus: 1 });
    expect(st.members.map((m: Document) => m.stateStr)).toEqual(['PRIMARY', 'SECONDARY', 'SECONDARY']);
  });
  test('a new voting member is newlyAdded (not a voter) until SECONDARY, then the server bumps the version itself', async () => {
    const c = await config(p);
    const d = await lab.node({ replSetName: 'rsv' });
    await reconfig([...c.members.slice(0, 1), ...c.members.slice(1).map((m: Document) => m), member(d, 3)]);
    const after = await config(p);
    expect(after.version).toBe(c.version + 1);
    expect(after.members[3].newlyAdded).toBeUndefined();
    await eventually(async () => (await config(p)).version === c.version + 2, 20_000, 'the server reconfig dropping newlyAdded');
  });
  test('quorum: a majority of the new config\'s voters must answer (74); the primary keeps its own majority', async () => {
    const p1 = await lab.node({ replSetName: 'rsq' });
    const x = await lab.node({ replSetName: 'rsq' });
    await p1.command({ replSetInitiate: { _id: 'rsq', version: 1, members: [member(p1, 0)] } });
    await primaryOf(p1);
    const c = await config(p1);
    await p1.command({ replSetReconfig: { ...c, version: c.version + 1, members: [...c.members, member(x, 1, { votes: 0, priority: 0 })] } });
    await eventually(async () => (await x.command({ hello: 1 })).secondary === true, 20_000, 'x secondary');
    await x.stop();
    const now = await config(p1);
    const raised = now.members.map((m: Document) => (m._id === 1 ? { ...m, votes: 1, priority: 1 } : m));
    expect(await refused(p1.command({ replSetReconfig: { ...now, version: now.version + 1, members: raised } }))).toMatchObject({
      code: 74,
      errmsg: expect.stringMatching(/^Quorum check failed because not enough voting nodes responded; required 2 but only the following 1 voting nodes responded/),
    });
    expect((await p1.command({ hello: 1 })).isWritablePrimary).toBe(true);
    await x.start();
  });
});
