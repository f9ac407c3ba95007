/**
 * The MongoDB engine, end to end through the CLI, against the replica-set SIMULATOR of
 * test/support/mongo-sim (no mongod can be installed here; it answers as a 7.0 server does,
 * see its header for what it models and what it does not). The `mongodb-live` job of the CI
 * workflow runs this same file against real mongod (DBREPL_MONGOD) in a mongo:7 container;
 * there the assertions on the exact documents the simulator received are skipped.
 *
 * One application, two servers: a standalone master with data, a standalone slave with data
 * of its own. Enable turns the master into a one-member set and adds the slave the careful
 * way; status; the variables; a resync of a voting member; a reconfig refused "not now" and
 * retried; disable to a standalone writable server.
 */
import * as fs from 'node:fs';
import type { Document } from 'mongodb';
import YAML from 'yaml';
import { LIVE_MONGOD, MongoLab, MongoNode, mongoServer } from '../support/mongo';
import { ServerError } from '../support/mongo-sim/wire';
import { dbrepl, tempDir, writeYaml } from '../support/dbrepl';
import { eventually } from '../support/sh';

jest.setTimeout(120_000);
const lab = new MongoLab();
let a: MongoNode;
let b: MongoNode;
let dir: string;
const env = { ...process.env };
const simOnly = LIVE_MONGOD ? test.skip : test;

function config(state: 'enabled' | 'disabled' = 'enabled', extra: Record<string, unknown> = {}): string {
  return writeYaml(dir, {
    version: 1,
    applications: { catalog: { servers: { 'mongo-a': mongoServer(a), 'mongo-b': mongoServer(b) } } },
    replications: [{ master: 'catalog/mongo-a', slave: 'catalog/mongo-b', state, catchup_timeout: '20s', ...extra }],
  });
}
const run = (...args: string[]) => dbrepl([...args, '-c', `${dir}/replication.yml`], env);
/** What the simulator received (replSetInitiate / replSetReconfig), from the `from`th on. */
const received = (from: number): Document[] => lab.sim!.received.slice(from).map((r) => r.command);
const strip = (members: Document[]): Document[] => members.map((x) => ({ _id: x._id, host: x.host, priority: x.priority, votes: x.votes }));

beforeAll(async () => {
  await lab.open();
  dir = tempDir('dbrepl-mongodb-');
  a = await lab.node();
  b = await lab.node();
  // The master's config file carries an operator's comment that must survive dbrepl's edit.
  fs.writeFileSync(a.configFile, fs.readFileSync(a.configFile, 'utf8').replace('storage:', '# kept by dbrepl\nstorage:'));
  await a.insert('shop', 'orders', [{ _id: 1, v: 'first order' }, { _id: 2, v: 'second order' }]);
  await b.insert('mine', 'notes', [{ _id: 'own', v: 'the slave\'s own data' }]);
  config();
});
afterAll(async () => {
  await lab.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a standalone master and a slave with data of its own', () => {
  let preserved: string;

  test('plan: the master must restart as a replica set and be initiated; the slave is added without a vote, then given one; two voters is even', async () => {
    const r = await run('plan', '--json');
    expect(r.code).toBe(0);
    const p = r.json().pairs[0];
    expect([p.live, p.action]).toEqual(['standalone', 'enable']);
    expect(p.steps.slice(0, 2)).toEqual([
      `master: replication.replSetName: rs0 in ${a.configFile}; restart it (${a.service.stop}; ${a.service.start})`,
      `master: replSetInitiate {_id: "rs0", version: 1, members: [{_id: 0, host: "127.0.0.1:${a.port}"}]}; wait until it is PRIMARY`,
    ]);
    expect(p.steps).toContain(`master: replSetReconfig (version + 1): add {host: "127.0.0.1:${b.port}", priority: 0, votes: 0}`);
    expect(p.steps).toContain(`master: replSetReconfig (version + 1): member 127.0.0.1:${b.port} priority 1, votes 1 (one voting change)`);
    expect(p.disruption).toMatch(/^master restarts as a replica set member/);
    expect(p.preserved).toMatch(new RegExp(`^${b.dbPath}\\.dbrepl-\\d{8}T\\d{9}Z$`));
    expect(p.warnings.join('\n')).toContain('runs standalone: enabling restarts it with replication.replSetName rs0');
    expect(p.warnings.join('\n')).toContain('replica set rs0 will have 2 voting members, an even number');
  });

  test('apply: initiated, the slave added (votes 0), SECONDARY, then voting; its data kept aside; the master\'s file edited, its comment kept', async () => {
    const from = lab.sim?.received.length ?? 0;
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    const p = r.json().pairs[0];
    expect(p.result).toBe('done');
    preserved = p.preserved;
    expect(fs.existsSync(preserved)).toBe(true);
    expect(await eventually(async () => (await b.command({ hello: 1 })).secondary === true, 30_000, 'b secondary')).toBe(true);
    expect(await b.count('shop', 'orders')).toBe(2);
    const conf = fs.readFileSync(a.configFile, 'utf8');
    expect(YAML.parse(conf).replication).toEqual({ replSetName: 'rs0' });
    expect(conf).toContain('# kept by dbrepl');
    if (lab.sim) {
      const [initiate, add, raise] = received(from);
      expect(initiate).toMatchObject({ replSetInitiate: { _id: 'rs0', version: 1, members: [{ _id: 0, host: `127.0.0.1:${a.port}` }] } });
      expect(add!.replSetReconfig.version).toBe(2);
      expect(strip(add!.replSetReconfig.members)).toEqual([
        { _id: 0, host: `127.0.0.1:${a.port}`, priority: 1, votes: 1 },
        { _id: 1, host: `127.0.0.1:${b.port}`, priority: 0, votes: 0 },
      ]);
      expect(raise!.replSetReconfig.version).toBe(3);
      expect(strip(raise!.replSetReconfig.members)[1]).toEqual({ _id: 1, host: `127.0.0.1:${b.port}`, priority: 1, votes: 1 });
      expect(received(from)).toHaveLength(3);
      // The slave's own data is in the kept directory.
      expect(fs.readFileSync(`${preserved}/sim-data.json`, 'utf8')).toContain("the slave's own data");
    }
  });

  test('status: replicating; writes on the master reach the slave; the variables name the set', async () => {
    const st = (await run('status', '--json')).json().pairs[0];
    expect(st.state).toBe('replicating');
    await a.insert('shop', 'orders', [{ _id: 3, v: 'after enable' }]);
    await eventually(async () => (await b.count('shop', 'orders')) === 3, 20_000, 'the third order on b');
    const e = (await run('env', '--format', 'json')).json();
    expect(e.catalog.MONGODB_ADDRESSES).toBe(`127.0.0.1:${a.port},127.0.0.1:${b.port}`);
    expect(e.catalog.MONGODB_URL).toBe(`mongodb://127.0.0.1:${a.port},127.0.0.1:${b.port}/?replicaSet=rs0`);
  });

  simOnly('a slave that stops applying is lagging past max_lag', async () => {
    b.sim!.paused = true;
    try {
      await a.insert('shop', 'orders', [{ _id: 4, v: 'while b is paused' }]);
      await new Promise((r) => setTimeout(r, 2200));
      await a.insert('shop', 'orders', [{ _id: 5, v: 'later' }]);
      config('enabled', { max_lag: '1s' });
      const st = (await run('status', '--json')).json().pairs[0];
      expect(st.state).toBe('lagging');
      expect(st.lag_seconds).toBeGreaterThanOrEqual(2);
    } finally {
      b.sim!.paused = false;
      config();
    }
  });

  test('resync of a voting member: its vote taken first, data moved aside, initial sync, the vote given back; a reconfig refused "not now" is retried', async () => {
    const from = lab.sim?.received.length ?? 0;
    lab.sim?.failNext.set('replSetReconfig', new ServerError(109, 'ConfigurationInProgress', 'Cannot run replSetReconfig because the node is currently updating its configuration'));
    const r = await dbrepl(['resync', '--pair', 'catalog/mongo-b', '--json', '-c', `${dir}/replication.yml`], env);
    expect(r.code).toBe(0);
    const p = r.json().pairs[0];
    expect(p.result).toBe('done');
    expect(p.preserved).not.toBe(preserved);
    expect(fs.existsSync(p.preserved)).toBe(true);
    await eventually(async () => (await b.command({ hello: 1 })).secondary === true, 30_000, 'b secondary again');
    expect(await b.count('shop', 'orders')).toBeGreaterThanOrEqual(3);
    if (lab.sim) {
      const sent = lab.sim.received.slice(from);
      // The refused one, then demote, raise.
      expect(sent[0]!.reply).toMatchObject({ ok: 0, code: 109 });
      const ok = sent.filter((x) => x.reply.ok === 1).map((x) => strip(x.command.replSetReconfig.members)[1]);
      expect(ok).toEqual([
        { _id: 1, host: `127.0.0.1:${b.port}`, priority: 0, votes: 0 },
        { _id: 1, host: `127.0.0.1:${b.port}`, priority: 1, votes: 1 },
      ]);
    }
  });

  test('disable: caught up, removed from the set, restarted standalone and writable, with its data', async () => {
    await a.insert('shop', 'orders', [{ _id: 6, v: 'just before the disable' }]);
    config('disabled');
    const plan = (await run('plan', '--json')).json().pairs[0];
    expect(plan.action).toBe('disable');
    expect(plan.steps).toContain(`master: replSetReconfig (version + 1) without 127.0.0.1:${b.port} (one voting change)`);
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    expect(r.json().pairs[0].result).toBe('done');
    const hello = await b.command({ hello: 1 });
    expect(hello.isWritablePrimary).toBe(true);
    expect(hello.setName).toBeUndefined();
    const orders = await b.count('shop', 'orders');
    expect(orders).toBe(await a.count('shop', 'orders'));
    await b.insert('shop', 'orders', [{ _id: 100, v: 'written on the former member' }]);
    expect(YAML.parse(fs.readFileSync(b.configFile, 'utf8')).replication).toBeUndefined();
    const cfg = (await a.command({ replSetGetConfig: 1 })).config as Document;
    expect(cfg.members.map((x: Document) => x.host)).toEqual([`127.0.0.1:${a.port}`]);
    expect((await run('status', '--json')).json().pairs[0].state).toBe('standalone');
    expect((await run('plan', '--json')).json().pairs[0].action).toBe('none');
  });
});

describe('a failed enable is rolled back', () => {
  let m: MongoNode;
  let s: MongoNode;
  let d: string;
  const file = (extra: Record<string, unknown> = {}) =>
    writeYaml(d, {
      version: 1,
      applications: { shop: { servers: { main: mongoServer(m), replica: mongoServer(s) } } },
      replications: [{ master: 'shop/main', slave: 'shop/replica', ...extra }],
    });

  beforeAll(async () => {
    d = tempDir('dbrepl-mongodb-undo-');
    m = await lab.node();
    s = await lab.node();
    await m.insert('app', 'items', [{ _id: 1 }]);
    await s.insert('own', 'things', [{ _id: 'kept' }]);
  });
  afterAll(() => fs.rmSync(d, { recursive: true, force: true }));

  simOnly('an initial sync that does not finish within copy_timeout: member removed, slave and master back as they were', async () => {
    const mConf = fs.readFileSync(m.configFile, 'utf8');
    const sConf = fs.readFileSync(s.configFile, 'utf8');
    // The simulator's initial sync takes longer than the pair allows.
    (lab.sim as unknown as { initialSyncMs: number }).initialSyncMs = 60_000;
    try {
      const r = await dbrepl(['apply', '--json', '-c', file({ copy_timeout: '2s' })], env);
      expect(r.code).toBe(1);
      const p = r.json().pairs[0];
      expect(p.result).toBe('failed');
      expect(p.error).toMatch(/wait until its initial sync is over.*timed out/s);
      expect(p.error).toMatch(/was removed from rs0 again/);
      expect(p.error).toMatch(/runs standalone again, as before/);
    } finally {
      (lab.sim as unknown as { initialSyncMs: number }).initialSyncMs = 1200;
    }
    // Both standalone and writable, their files and data as before.
    for (const n of [m, s]) {
      const hello = await n.command({ hello: 1 });
      expect([hello.isWritablePrimary, hello.setName, hello.isreplicaset]).toEqual([true, undefined, undefined]);
    }
    expect(fs.readFileSync(m.configFile, 'utf8')).toBe(mConf);
    expect(fs.readFileSync(s.configFile, 'utf8')).toBe(sConf);
    expect(await s.count('own', 'things')).toBe(1);
    expect(await m.count('app', 'items')).toBe(1);
    expect(fs.readdirSync(`${s.dbPath}/..`).filter((f) => f.includes('.dbrepl-'))).toEqual([]);
    expect((await dbrepl(['status', '--json', '-c', file()], env)).json().pairs[0].state).toBe('standalone');
  });
});

describe('refused at plan time, nothing changed', () => {
  let p: MongoNode;
  let q: MongoNode;
  let r: MongoNode;
  let t: MongoNode;
  let d: string;
  const plan = async (servers: Record<string, MongoNode>, sets: Record<string, string>, pairs: Array<Record<string, unknown>>) => {
    const doc = {
      version: 1,
      applications: { x: { servers: Object.fromEntries(Object.entries(servers).map(([k, n]) => [k, { ...mongoServer(n, sets[k] ?? 'rsx') }])) } },
      replications: pairs,
    };
    return (await dbrepl(['plan', '--json', '-c', writeYaml(d, doc)], env)).json().pairs;
  };

  beforeAll(async () => {
    d = tempDir('dbrepl-mongodb-refused-');
    [p, q, r] = [await lab.node({ replSetName: 'rsx' }), await lab.node({ replSetName: 'rsx' }), await lab.node()];
    t = await lab.node({ replSetName: 'rsy' });
    await p.command({ replSetInitiate: { _id: 'rsx', version: 1, members: [{ _id: 0, host: `127.0.0.1:${p.port}` }, { _id: 1, host: `127.0.0.1:${q.port}`, priority: 0, votes: 0 }] } });
    await t.command({ replSetInitiate: { _id: 'rsy', version: 1, members: [{ _id: 0, host: `127.0.0.1:${t.port}` }] } });
    await eventually(async () => (await q.command({ hello: 1 })).secondary === true && (await t.command({ hello: 1 })).isWritablePrimary === true, 30_000, 'the sets up');
  });
  afterAll(() => fs.rmSync(d, { recursive: true, force: true }));

  test('a member the file does not declare is named in a warning', async () => {
    const [row] = await plan({ p, r }, {}, [{ master: 'x/p', slave: 'x/r' }]);
    expect(row.action).toBe('enable');
    expect(row.error).toBeNull();
    expect(row.warnings).toContain(`replica set rsx of x/p has members the file does not declare: 127.0.0.1:${q.port} (dbrepl leaves them alone; declare them to manage them)`);
  });

  test('a master that is a secondary: members are added on the primary', async () => {
    const [row] = await plan({ q, r, p }, {}, [{ master: 'x/q', slave: 'x/r' }]);
    expect(row.error).toContain(`x/q is not the primary of rsx (the primary is 127.0.0.1:${p.port})`);
  });

  test('a slave that is a member of another set', async () => {
    const [row] = await plan({ p, t }, { t: 'rsx' }, [{ master: 'x/p', slave: 'x/t' }]);
    expect(row.error).toContain('x/t is a member of replica set rsy');
  });

  test('options_file that is not the file the server reads', async () => {
    const other = `${r.base}/other.conf`;
    fs.writeFileSync(other, 'net:\n  port: 1\n');
    const doc = { version: 1, applications: { x: { servers: { p: mongoServer(p, 'rsx'), r: { ...mongoServer(r, 'rsx'), options_file: other } } } }, replications: [{ master: 'x/p', slave: 'x/r' }] };
    const [row] = (await dbrepl(['plan', '--json', '-c', writeYaml(d, doc, 'opts.yml')], env)).json().pairs;
    expect(row.error).toContain(`options_file of x/r is ${other} but its mongod reads ${r.configFile} (--config)`);
  });

  test('fence on a MongoDB disable', async () => {
    const [row] = await plan({ p, q }, {}, [{ master: 'x/p', slave: 'x/q', state: 'disabled', fence: true }]);
    expect(row.action).toBe('disable');
    expect(row.error).toContain('fence is not available for MongoDB');
    expect((await q.command({ hello: 1 })).secondary).toBe(true);
  });
});
