/**
 * MySQL 8.4, live. No MySQL server can be installed on the development machines, so this
 * suite runs in the GitHub workflow (job `mysql84`) against two mysql:8.4 containers, and
 * anywhere DBREPL_MYSQL8="host:port:rootpassword,host:port:rootpassword" names a master and
 * a slave (GTID mode on, distinct server_ids). Without it the suite is skipped, and says so.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { dbrepl, SECRETS, tempDir, writeYaml } from '../support/dbrepl';
import { eventually } from '../support/sh';

const spec = process.env.DBREPL_MYSQL8;
const servers = (spec ?? '').split(',').filter(Boolean).map((s) => {
  const [host, port, password] = s.split(':');
  return { host: host!, port: Number(port), password: password! };
});
const suite = servers.length === 2 ? describe : describe.skip;

async function q(s: (typeof servers)[number], sql: string): Promise<any[]> {
  const c = await createConnection({ host: s.host, port: s.port, user: 'root', password: s.password });
  try {
    return (await c.query(sql))[0] as any[];
  } finally {
    await c.end();
  }
}

suite('MySQL 8.4 pair (DBREPL_MYSQL8)', () => {
  const [master, slave] = servers;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const write = (state: 'enabled' | 'disabled') =>
    writeYaml(dir, {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL}' } },
      applications: {
        app: {
          servers: {
            main: { engine: 'mysql', host: master!.host, port: master!.port, user: 'root', password: '${M_PW}' },
            replica: { engine: 'mysql', host: slave!.host, port: slave!.port, user: 'root', password: '${S_PW}' },
          },
        },
      },
      replications: [{ master: 'app/main', slave: 'app/replica', state }],
    });

  beforeAll(async () => {
    dir = tempDir('dbrepl-mysql8-');
    const repl = randomBytes(10).toString('hex');
    for (const s of [master!.password, slave!.password, repl]) SECRETS.add(s);
    env = { ...process.env, M_PW: master!.password, S_PW: slave!.password, REPL: repl };
    await q(master!, 'CREATE DATABASE IF NOT EXISTS shop');
    await q(master!, 'CREATE TABLE IF NOT EXISTS shop.orders (id INT PRIMARY KEY, v VARCHAR(50))');
    await q(master!, `INSERT INTO shop.orders VALUES (1, 'before enable')`);
    write('enabled');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('enable: the statements of 8.4 run, the slave follows by GTID, read-only with super_read_only', async () => {
    const file = path.join(dir, 'replication.yml');
    const r = await dbrepl(['apply', '--json', '-c', file], env);
    expect(r.json().pairs[0]).toMatchObject({ action: 'enable', result: 'done', error: null });
    await q(master!, `INSERT INTO shop.orders VALUES (2, 'after enable')`);
    await eventually(async () => (await q(slave!, 'SELECT COUNT(*) AS n FROM shop.orders'))[0].n == 2, 20_000, 'row on the slave');
    expect((await q(slave!, 'SELECT @@super_read_only AS s'))[0].s).toBe(1);
    expect((await dbrepl(['status', '--json', '-c', file], env)).json().pairs[0].state).toBe('replicating');
  });

  test('disable: writable, no replication left', async () => {
    write('disabled');
    const r = await dbrepl(['apply', '--json', '-c', path.join(dir, 'replication.yml')], env);
    expect(r.json().pairs[0]).toMatchObject({ action: 'disable', result: 'done' });
    expect(await q(slave!, 'SHOW REPLICA STATUS')).toEqual([]);
    expect((await q(slave!, 'SELECT @@read_only AS r, @@super_read_only AS s'))[0]).toEqual({ r: 0, s: 0 });
  });
});
