/**
 * The committed bundle run as the runner runs it: `node dist/index.js` with INPUT_*
 * variables and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, against real PostgreSQL.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PgCluster, startPostgres } from '../support/postgres';
import { ActionRun, runBundledAction, SECRETS, tempDir, writeYaml } from '../support/dbrepl';
import { eventually } from '../support/sh';

const REPL_PASSWORD = `repl-${randomBytes(10).toString('hex')}`;
let master: PgCluster;
let replica: PgCluster;
let workspace: string;

function runAction(inputs: Record<string, string>): Promise<ActionRun> {
  return runBundledAction(workspace, { PG_PASSWORD: master.password, REPLICATION_PASSWORD: REPL_PASSWORD }, inputs);
}

beforeAll(async () => {
  const password = `admin-${randomBytes(10).toString('hex')}`;
  [master, replica] = await Promise.all([startPostgres({ password }), startPostgres({ password, layout: 'debian' })]);
  SECRETS.add(password);
  SECRETS.add(REPL_PASSWORD);
  workspace = tempDir('dbrepl-action-');
  const server = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: '${PG_PASSWORD}', service: c.service });
  writeYaml(workspace, {
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPLICATION_PASSWORD}' } },
    applications: { shop: { environment: 'production', servers: { 'pg-main': server(master), 'pg-replica': server(replica) } } },
    replications: [{ master: 'shop/pg-main', slave: 'shop/pg-replica' }],
  });
  fs.writeFileSync(path.join(workspace, 'broken.yml'), 'version: 1\napplications:\n  shop:\n    servers:\n      pg:\n        engine: postgres\n        host: 127.0.0.1\n');
});

afterAll(async () => {
  await Promise.all([master, replica].filter(Boolean).map((c) => c.destroy()));
  if (workspace) fs.rmSync(workspace, { recursive: true, force: true });
});

describe('the action bundle (dist/index.js)', () => {
  test('plan: outputs and job summary', async () => {
    const r = await runAction({ command: 'plan' });
    expect(r.code).toBe(0);
    expect(r.outputs.changes).toBe('1');
    const plan = JSON.parse(r.outputs.plan!);
    expect(plan.pairs[0]).toMatchObject({ name: 'shop/pg-replica', live: 'standalone', action: 'enable' });
    expect(JSON.parse(r.outputs.status!).pairs[0].state).toBe('standalone');
    expect(JSON.parse(r.outputs.env!)).toEqual({
      shop: { POSTGRESQL_ADDRESS: '127.0.0.1', POSTGRESQL_PORT: String(master.port), POSTGRESQL_SLAVE_ADDRESSES: `127.0.0.1:${replica.port}` },
    });
    expect(r.summary).toContain('| pair | master -> slave | engine | desired | live | action | lag | result |');
    expect(r.summary).toContain('| shop/pg-replica | shop/pg-main -> shop/pg-replica | postgresql | enabled | standalone | **enable** |');
    // The substituted passwords were registered for masking.
    expect(r.log).toContain(`::add-mask::${REPL_PASSWORD}`);
  });

  test('fail-on-drift fails the plan step when there are changes', async () => {
    const r = await runAction({ command: 'plan', 'fail-on-drift': 'true' });
    expect(r.code).toBe(1);
    expect(r.log).toMatch(/::error::fail-on-drift: 1 change\(s\) planned/);
  });

  test('apply: enables, outputs the result, then status is healthy', async () => {
    const r = await runAction({ command: 'apply', 'max-parallel': '2' });
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.outputs.plan!);
    expect(plan.pairs[0]).toMatchObject({ action: 'enable', result: 'done', error: null });
    expect(JSON.parse(r.outputs.status!).pairs[0].state).toBe('replicating');
    expect(r.summary).toMatch(/\| \*\*enable\*\* \| .* \| done \|/);

    await master.query('CREATE TABLE t (v int)');
    await master.query('INSERT INTO t VALUES (42)');
    await eventually(async () => (await replica.query<{ v: number }>('SELECT v FROM t').catch(() => []))[0]?.v === 42, 20_000, 'row on replica');

    const s = await runAction({ command: 'status', 'fail-on-drift': 'true' });
    expect(s.code).toBe(0);
    expect(s.outputs.changes).toBe('0');
  });

  test('an invalid replication.yml fails with an annotation at the offending line', async () => {
    const r = await runAction({ command: 'plan', config: 'broken.yml' });
    expect(r.code).toBe(1);
    expect(r.log).toMatch(/::error title=replication\.yml,file=broken\.yml,line=6,col=17::applications\.shop\.servers\.pg\.engine: invalid value/);
    expect(r.outputs.plan).toBeUndefined();
  });
});
