/**
 * Cascading PostgreSQL (SPEC section 2): A -> B -> C enabled in one run. The pair of C waits
 * for the pair that rebuilds its master B; the role C uses replicates from A.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { PgCluster, startPostgres } from '../support/postgres';
import { dbrepl, SECRETS, tempDir, writeYaml } from '../support/dbrepl';
import { eventually } from '../support/sh';

let a: PgCluster;
let b: PgCluster;
let c: PgCluster;
let dir: string;

beforeAll(async () => {
  const password = randomBytes(8).toString('hex');
  [a, b, c] = await Promise.all([startPostgres({ password }), startPostgres({ password }), startPostgres({ password, layout: 'debian' })]);
  SECRETS.add(password);
  dir = tempDir('dbrepl-cascade-');
});

afterAll(async () => {
  await Promise.all([a, b, c].filter(Boolean).map((x) => x.destroy()));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('A -> B -> C: enabled in one apply, a row written on A reaches C, env lists both slaves', async () => {
  const repl = randomBytes(8).toString('hex');
  SECRETS.add(repl);
  const server = (x: PgCluster) => ({ engine: 'postgresql', host: x.host, port: x.port, user: 'postgres', password: '${PW}', service: x.service });
  const file = writeYaml(dir, {
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPL}' } },
    applications: { shop: { servers: { a: server(a), b: server(b) } }, reports: { servers: { c: server(c) } } },
    // C's pair first in the file: the order of execution still follows the chain.
    replications: [
      { master: 'shop/b', slave: 'reports/c' },
      { master: 'shop/a', slave: 'shop/b' },
    ],
  });
  const env = { ...process.env, PW: a.password, REPL: repl };
  const r = await dbrepl(['apply', '--json', '--max-parallel', '4', '-c', file], env);
  expect(r.stderr).not.toMatch(/failed/);
  expect(r.code).toBe(0);
  expect(r.json().pairs.map((p: any) => [p.name, p.result])).toEqual([['reports/c', 'done'], ['shop/b', 'done']]);

  await a.query('CREATE TABLE chain AS SELECT 1 AS v');
  await eventually(async () => (await c.query<{ v: number }>('SELECT v FROM chain').catch(() => []))[0]?.v === 1, 20_000, 'row on C');
  const wr = await c.query<{ sender_port: number }>('SELECT sender_port FROM pg_stat_wal_receiver');
  expect(wr[0]!.sender_port).toBe(b.port);

  const status = (await dbrepl(['status', '--json', '-c', file], env)).json();
  expect(status.pairs.map((p: any) => p.state)).toEqual(['replicating', 'replicating']);
  // Cascaded slaves included, in the order of their references (reports/c before shop/b).
  expect(r.json().env.shop.POSTGRESQL_SLAVE_ADDRESSES).toBe(`127.0.0.1:${c.port},127.0.0.1:${b.port}`);
  expect(r.json().env.reports.POSTGRESQL_ADDRESS).toBe('127.0.0.1');
  expect(r.json().env.reports.POSTGRESQL_PORT).toBe(String(c.port));
});
