/**
 * The main job on real local servers: three PostgreSQL clusters (own ports, temp dirs),
 * one replication.yml with a pair inside an application and one across applications,
 * driven through the committed `dist/cli.js` exactly as an operator would.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { PgCluster, startPostgres } from '../test/support/postgres';
import { eventually } from '../test/support/sh';

// scripts/demo.sh runs this from the repository root.
const CLI = path.resolve('dist/cli.js');

function dbrepl(dir: string, env: NodeJS.ProcessEnv, ...args: string[]): number {
  console.log(`\n$ dbrepl ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, env, stdio: 'inherit' });
  return r.status ?? 1;
}

async function main(): Promise<void> {
  const clusters: PgCluster[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-demo-work-'));
  try {
    console.log('Starting three PostgreSQL clusters (shop/pg-main, shop/pg-replica, reports/pg)...');
    const admin = randomBytes(12).toString('hex');
    const [main, replica, reports] = await Promise.all([
      startPostgres({ password: admin }),
      startPostgres({ password: admin }),
      startPostgres({ password: admin, layout: 'debian' }),
    ]);
    clusters.push(main, replica, reports);
    await main.query('CREATE TABLE orders (id serial PRIMARY KEY, item text)');
    await main.query(`INSERT INTO orders (item) VALUES ('written before enable')`);

    const server = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: '${PG_ADMIN_PASSWORD}', service: c.service });
    const doc = (reportsState: 'enabled' | 'disabled') => ({
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPLICATION_PASSWORD}' } },
      applications: {
        shop: { environment: 'production', servers: { 'pg-main': server(main), 'pg-replica': server(replica) } },
        reports: { environment: 'reports', servers: { pg: server(reports) } },
      },
      replications: [
        { master: 'shop/pg-main', slave: 'shop/pg-replica' },
        { master: 'shop/pg-main', slave: 'reports/pg', name: 'reports-copy', state: reportsState, max_lag: '1m' },
      ],
    });
    fs.writeFileSync(path.join(dir, 'replication.yml'), stringify(doc('enabled')));
    console.log(`\nreplication.yml (${dir}):\n${fs.readFileSync(path.join(dir, 'replication.yml'), 'utf8')}`);
    const env = { ...process.env, PG_ADMIN_PASSWORD: admin, REPLICATION_PASSWORD: randomBytes(12).toString('hex') };

    let failed = 0;
    failed += dbrepl(dir, env, 'validate');
    failed += dbrepl(dir, env, 'plan');
    const t0 = Date.now();
    failed += dbrepl(dir, env, 'apply');
    console.log(`(apply took ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    failed += dbrepl(dir, env, 'status');
    failed += dbrepl(dir, env, 'env');

    await main.query(`INSERT INTO orders (item) VALUES ('written after enable')`);
    for (const [name, c] of [['shop/pg-replica', replica], ['reports/pg', reports]] as const) {
      const rows = await eventually(async () => {
        const r = await c.query<{ item: string }>('SELECT item FROM orders ORDER BY id');
        return r.length === 2 ? r : undefined;
      }, 20_000, `rows on ${name}`);
      console.log(`${name} reads: ${rows.map((r) => r.item).join(', ')}`);
    }

    console.log('\nNow reports-copy is set to disabled in replication.yml (the migration cutover):');
    fs.writeFileSync(path.join(dir, 'replication.yml'), stringify(doc('disabled')));
    failed += dbrepl(dir, env, 'plan');
    failed += dbrepl(dir, env, 'apply');
    await reports.query(`INSERT INTO orders (item) VALUES ('written on the promoted reports server')`);
    console.log('reports/pg accepts writes again.');
    failed += dbrepl(dir, env, 'env', '--format', 'json');
    if (failed !== 0) throw new Error('a dbrepl command failed');
    console.log('\nDemo finished: all commands succeeded.');
  } finally {
    await Promise.all(clusters.map((c) => c.destroy()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
