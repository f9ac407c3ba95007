/**
 * A fleet sharded over a job matrix: `dbrepl list --json` gives one entry per application
 * (a pair belongs to its slave's application), and two shards run at once, as two matrix
 * jobs would, each `apply --only <its pairs>`, both on one PostgreSQL master: the master's
 * lock orders the work on it, both pairs are enabled, and each job's variables are its own.
 */
import { randomBytes } from 'node:crypto';
import { CliProcess } from '../support/cli-process';
import { dbrepl, scratch, writeYaml } from '../support/dbrepl';
import { startPostgres } from '../support/postgres';
import { pgServer } from '../support/servers-yaml';
import { eventually } from '../support/sh';

const REPL = `repl-${randomBytes(8).toString('hex')}`;
const { pool, dir } = scratch('dbrepl-shards-', [REPL]);

test('list --json shards by application; two shards at once on one master both converge', async () => {
  const password = `pg-${randomBytes(8).toString('hex')}`;
  const [main, replica, dr] = await Promise.all([0, 1, 2].map(() => pool.add(startPostgres({ password }))));
  const env = { ...process.env, PG_PW: password, REPL_PW: REPL };
  const file = writeYaml(dir(), {
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
    applications: { shop: { servers: { main: pgServer(main!, 'PG_PW'), replica: pgServer(replica!, 'PG_PW') } }, 'shop-dr': { servers: { pg: pgServer(dr!, 'PG_PW') } } },
    replications: [
      { master: 'shop/main', slave: 'shop/replica' },
      { master: 'shop/main', slave: 'shop-dr/pg' },
    ],
  });
  await main!.query('CREATE TABLE t AS SELECT 1 AS x');
  // list connects to nothing: the passwords need not be exported.
  const list = await dbrepl(['list', '--json', '-c', file], { ...process.env });
  expect(list.code).toBe(0);
  const doc = list.json();
  expect(doc.matrix).toEqual({ include: [{ application: 'shop', only: 'shop/replica' }, { application: 'shop-dr', only: 'shop-dr/pg' }] });
  expect(doc.pairs.map((p: { name: string; application: string }) => [p.name, p.application])).toEqual([['shop/replica', 'shop'], ['shop-dr/pg', 'shop-dr']]);
  expect(doc.applications[0].servers[0]).toEqual({ name: 'shop/main', engine: 'postgresql', host: main!.host, port: main!.port });

  const shards = (doc.matrix.include as Array<{ only: string }>).map((m) => new CliProcess(['apply', '--json', '--only', m.only, '--lock-timeout', '120s', '-c', file], env, dir()));
  const exits = await Promise.all(shards.map((s) => s.done));
  for (const e of exits) expect(e.code).toBe(0);
  const results = exits.map((e) => JSON.parse(e.stdout) as { pairs: Array<{ name: string; result: string }>; env: Record<string, Record<string, string>> });
  expect(results.map((r) => r.pairs.map((p) => [p.name, p.result]))).toEqual([[['shop/replica', 'done']], [['shop-dr/pg', 'done']]]);
  await eventually(async () => (await dbrepl(['status', '--json', '-c', file], env)).json().pairs.every((p: { state: string }) => p.state === 'replicating'), 30_000, 'both replicating');
  for (const c of [replica!, dr!]) expect((await c.query('SELECT * FROM t')).length).toBe(1);
});
