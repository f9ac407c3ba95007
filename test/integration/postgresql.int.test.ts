/**
 * PostgreSQL, end to end against real clusters started by test/support/postgres.ts.
 * The steps share clusters and run in order: enable, verify, resync twice, disable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PG_BIN, PgCluster, startPostgres, HBA_WITHOUT_REPLICATION } from '../support/postgres';
import { dbrepl, SECRETS, tempDir, writeYaml } from '../support/dbrepl';
import { eventually, freePort, sh } from '../support/sh';

const REPL_PASSWORD = `repl-${randomBytes(10).toString('hex')}`;

let master: PgCluster;
let replica: PgCluster; // shop/pg-replica, initdb layout, with data of its own before enable
let dr: PgCluster; // shop-dr/pg, Debian layout (configuration outside the data directory)
let other: PgCluster; // an unrelated primary, for "follows another server"
let dir: string;
let env: NodeJS.ProcessEnv;

function server(c: PgCluster, passwordVar: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: `\${${passwordVar}}`, service: c.service, ...extra };
}

function config(opts: { drState?: 'enabled' | 'disabled'; drService?: { stop: string; start: string } } = {}): string {
  return writeYaml(dir, {
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPLICATION_PASSWORD}' } },
    applications: {
      shop: {
        environment: 'production',
        servers: {
          'pg-main': server(master, 'MASTER_PASSWORD'),
          'pg-replica': server(replica, 'REPLICA_PASSWORD'),
        },
      },
      'shop-dr': {
        environment: 'dr',
        servers: { pg: server(dr, 'DR_PASSWORD', opts.drService ? { service: opts.drService } : {}) },
      },
    },
    replications: [
      { master: 'shop/pg-main', slave: 'shop/pg-replica' },
      { primary: 'shop/pg-main', replica: 'shop-dr/pg', state: opts.drState ?? 'enabled', max_lag: '30s', catchup_timeout: '60s' },
    ],
  });
}

const run = (...args: string[]) => dbrepl([...args, '-c', path.join(dir, 'replication.yml')], env);

async function tableOn(c: PgCluster, table: string): Promise<string[]> {
  const rows = await c.query<{ v: string }>(`SELECT v FROM ${table} ORDER BY v`);
  return rows.map((r) => r.v);
}

beforeAll(async () => {
  // A physical copy carries the master's roles, so the servers share one admin password
  // (the tool refuses to enable a slave whose login would stop working; see the preflight test).
  const password = `admin-${randomBytes(10).toString('hex')}`;
  [master, replica, dr, other] = await Promise.all([
    startPostgres({ hba: HBA_WITHOUT_REPLICATION, password }),
    startPostgres({ settings: { work_mem: `'7MB'` }, password }),
    startPostgres({ layout: 'debian', settings: { work_mem: `'9MB'` }, password }),
    startPostgres({ password }),
  ]);
  for (const c of [master, replica, dr, other]) SECRETS.add(c.password);
  SECRETS.add(REPL_PASSWORD);
  dir = tempDir('dbrepl-it-');
  env = { ...process.env, MASTER_PASSWORD: master.password, REPLICA_PASSWORD: replica.password, DR_PASSWORD: dr.password, REPLICATION_PASSWORD: REPL_PASSWORD };
  await master.query('CREATE TABLE orders (v text PRIMARY KEY)');
  await master.query(`INSERT INTO orders VALUES ('before-enable')`);
  await replica.query('CREATE TABLE kept_by_replica (v text)');
  await replica.query(`INSERT INTO kept_by_replica VALUES ('old-replica-row')`);
  config();
});

afterAll(async () => {
  await Promise.all([master, replica, dr, other].filter(Boolean).map((c) => c.destroy()));
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('postgresql replication, end to end', () => {
  let preservedReplica: string;

  test('plan: both standalone slaves are to be enabled, nothing touched', async () => {
    const r = await run('plan', '--json', '--detailed-exitcode');
    expect(r.code).toBe(2);
    const plan = r.json();
    expect(plan.changes).toBe(2);
    expect(plan.pairs.map((p: any) => [p.name, p.live, p.action])).toEqual([
      ['shop/pg-replica', 'standalone', 'enable'],
      ['shop-dr/pg', 'standalone', 'enable'],
    ]);
    const p = plan.pairs[0];
    expect(p.preserved).toMatch(new RegExp(`^${replica.dataDir}\\.dbrepl-\\d{8}T\\d{9}Z$`));
    expect(p.steps.join('\n')).toContain('pg_basebackup -X stream -R -S dbrepl_shop__pg_replica');
    expect(p.disruption).toContain('master keeps serving');
    expect(plan.env.shop).toEqual({
      POSTGRESQL_ADDRESS: '127.0.0.1',
      POSTGRESQL_PORT: String(master.port),
      // In the order of the references: shop-dr/pg sorts before shop/pg-replica.
      POSTGRESQL_SLAVE_ADDRESSES: `127.0.0.1:${dr.port},127.0.0.1:${replica.port}`,
    });
    // plan changed nothing: the replica is still a primary with its own table, and no slot exists.
    expect(await tableOn(replica, 'kept_by_replica')).toEqual(['old-replica-row']);
    expect(await master.query('SELECT slot_name FROM pg_replication_slots')).toEqual([]);
  });

  test('apply enables both pairs; a row written on the master is read on both slaves', async () => {
    const r = await run('apply', '--json');
    expect(r.stderr).not.toMatch(/failed/);
    expect(r.code).toBe(0);
    const result = r.json();
    expect(result.pairs.map((p: any) => [p.name, p.action, p.result, p.error])).toEqual([
      ['shop/pg-replica', 'enable', 'done', null],
      ['shop-dr/pg', 'enable', 'done', null],
    ]);
    preservedReplica = result.pairs[0].preserved;
    expect(fs.existsSync(path.join(preservedReplica, 'PG_VERSION'))).toBe(true);

    await master.query(`INSERT INTO orders VALUES ('after-enable')`);
    for (const slave of [replica, dr]) {
      await eventually(async () => (await tableOn(slave, 'orders')).includes('after-enable'), 20_000, 'row on slave');
      expect(await tableOn(slave, 'orders')).toEqual(['after-enable', 'before-enable']);
      expect((await slave.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
    }
    // A slave is read-only.
    await expect(replica.query(`INSERT INTO orders VALUES ('x')`)).rejects.toThrow(/read-only/);
  });

  test('the slaves kept their own port and settings (configuration in and outside the data directory)', async () => {
    expect((await replica.query<{ port: string }>('SHOW port'))[0]!.port).toBe(String(replica.port));
    expect((await replica.query<{ work_mem: string }>('SHOW work_mem'))[0]!.work_mem).toBe('7MB');
    expect((await dr.query<{ work_mem: string }>('SHOW work_mem'))[0]!.work_mem).toBe('9MB');
    const owner = fs.statSync(replica.dataDir);
    const pgUid = Number((await sh('id', ['-u', 'postgres'])).stdout.trim());
    expect(owner.uid).toBe(pgUid);
    expect(owner.mode & 0o777).toBe(0o700);
  });

  test('the master got an access rule, one slot per slave, and a replication role', async () => {
    const hba = fs.readFileSync(path.join(master.confDir, 'pg_hba.conf'), 'utf8');
    // Both slaves connect from 127.0.0.1: one rule serves them, added by whichever pair came first.
    expect(hba).toMatch(/^# dbrepl: replication login replicator from 127\.0\.0\.1 \(first added for shop(-dr)?\/pg(-replica)?\)\nhost replication "replicator" 127\.0\.0\.1\/32 scram-sha-256\nlocal all all trust$/m);
    expect(hba.match(/^host replication "replicator"/gm)).toHaveLength(1);
    const slots = await master.query<{ slot_name: string; active: boolean }>('SELECT slot_name, active FROM pg_replication_slots ORDER BY 1');
    expect(slots).toEqual([
      { slot_name: 'dbrepl_shop__pg_replica', active: true },
      { slot_name: 'dbrepl_shop_dr__pg', active: true },
    ]);
    const role = await master.query<{ rolreplication: boolean; rolsuper: boolean }>(`SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = 'replicator'`);
    expect(role).toEqual([{ rolreplication: true, rolsuper: false }]);
  });

  test("the slave's previous data is on disk at `preserved` and starts as a database", async () => {
    const copy = tempDir('dbrepl-preserved-');
    await sh('cp', ['-a', `${preservedReplica}/.`, copy]);
    await sh('chown', ['-R', 'postgres:postgres', copy]);
    fs.chmodSync(copy, 0o700);
    const port = await freePort();
    await sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, 'start', '-D', copy, '-w', '-t', '60', '-l', `${copy}/log`, '-o', `-p ${port} -c unix_socket_directories=${copy}`]);
    try {
      const { stdout } = await sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/psql`, '-h', copy, '-p', String(port), '-Atc', 'SELECT v FROM kept_by_replica']);
      expect(stdout.trim()).toBe('old-replica-row');
    } finally {
      await sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, 'stop', '-D', copy, '-m', 'immediate'], { allowFail: true });
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });

  test('status says replicating; the next plan is all none; env lists both applications', async () => {
    const s = await run('status', '--json');
    expect(s.code).toBe(0);
    for (const p of s.json().pairs) {
      expect(p.state).toBe('replicating');
      expect(p.lag_bytes).toBeGreaterThanOrEqual(0);
      expect(p.lag_seconds).toBeGreaterThanOrEqual(0);
      expect(p.error).toBeNull();
    }
    const plan = await run('plan', '--json', '--detailed-exitcode');
    expect(plan.code).toBe(0);
    expect(plan.json().changes).toBe(0);
    expect(plan.json().pairs.map((p: any) => p.action)).toEqual(['none', 'none']);

    const e = await run('env', '--format', 'json');
    expect(e.json()).toEqual({
      shop: {
        POSTGRESQL_ADDRESS: '127.0.0.1',
        POSTGRESQL_PORT: String(master.port),
        POSTGRESQL_SLAVE_ADDRESSES: [`127.0.0.1:${dr.port}`, `127.0.0.1:${replica.port}`].join(','),
      },
      'shop-dr': { POSTGRESQL_ADDRESS: '127.0.0.1', POSTGRESQL_PORT: String(dr.port), POSTGRESQL_SLAVE_ADDRESSES: '' },
    });
    const d = await run('env');
    expect(d.stdout).toContain(`# shop\nPOSTGRESQL_ADDRESS=127.0.0.1\nPOSTGRESQL_PORT=${master.port}\n`);
    expect(d.stdout).toContain('# shop-dr\n');
  });

  test('a slave promoted by hand is resynced', async () => {
    await replica.query('SELECT pg_promote(true, 60)');
    await replica.query(`CREATE TABLE written_after_promotion (v text)`);
    const plan = (await run('plan', '--json')).json();
    expect(plan.pairs[0]).toMatchObject({ live: 'standalone', action: 'resync' });
    expect(plan.pairs[0].reason).toMatch(/master still keeps replication state/);

    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    const pair = r.json().pairs[0];
    expect(pair).toMatchObject({ action: 'resync', result: 'done' });
    expect(pair.preserved).not.toBe(preservedReplica);
    await master.query(`INSERT INTO orders VALUES ('after-resync')`);
    await eventually(async () => (await tableOn(replica, 'orders')).includes('after-resync'), 20_000, 'row after resync');
    expect((await run('status', '--json')).json().pairs[0].state).toBe('replicating');
  });

  test('a slave that follows another server is resynced onto the declared master', async () => {
    // Rebuild the replica by hand from `other`, keeping its own postgresql.conf.
    const conf = fs.readFileSync(replica.configFile);
    await replica.stop();
    fs.rmSync(replica.dataDir, { recursive: true, force: true });
    await sh('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_basebackup`, '-D', replica.dataDir, '-R', '-X', 'stream', '-d', `host=127.0.0.1 port=${other.port} user=postgres`], {
      env: { ...process.env, PGPASSWORD: other.password },
    });
    fs.writeFileSync(replica.configFile, conf);
    await replica.start();
    await eventually(async () => (await replica.query<{ status: string }>('SELECT status FROM pg_stat_wal_receiver'))[0]?.status === 'streaming', 20_000, 'replica streams from other');

    const status = (await run('status', '--json')).json();
    expect(status.pairs[0].state).toBe('other-master');
    expect(status.pairs[0].error).toContain(`127.0.0.1:${other.port}`);
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    expect(r.json().pairs[0]).toMatchObject({ live: 'other-master', action: 'resync', result: 'done' });
    expect(await tableOn(replica, 'orders')).toContain('after-resync');
    const wr = await replica.query<{ sender_port: number }>('SELECT sender_port FROM pg_stat_wal_receiver');
    expect(wr[0]!.sender_port).toBe(master.port);
  });

  test('a failed step stops that pair, names the step, and the other pair goes on', async () => {
    config({ drService: { stop: 'echo "cannot stop: disk on fire" >&2; exit 3', start: dr.service.start } });
    const r = await run('resync', '--pair', 'shop/pg-replica', '--pair', 'shop-dr/pg', '--json');
    expect(r.code).toBe(1);
    const [a, b] = r.json().pairs;
    expect(a).toMatchObject({ action: 'resync', result: 'done', error: null });
    expect(b).toMatchObject({ action: 'resync', result: 'failed' });
    expect(b.error).toMatch(/step "slave: stop the server" failed/);
    expect(b.error).toContain('disk on fire');
    // Nothing was moved: the dr slave still streams from its data directory.
    expect((await run('status', '--json')).json().pairs[1].state).toBe('replicating');
    config();
  });

  test('disable: the slave accepts writes, the master keeps no slot for it, env drops it', async () => {
    config({ drState: 'disabled' });
    const plan = (await run('plan', '--json')).json();
    expect(plan.pairs[1]).toMatchObject({ desired: 'disabled', live: 'replicating', action: 'disable' });
    expect(plan.env.shop.POSTGRESQL_SLAVE_ADDRESSES).toBe(`127.0.0.1:${replica.port}`);
    await master.query(`INSERT INTO orders VALUES ('just-before-disable')`);
    const r = await run('apply', '--json');
    expect(r.code).toBe(0);
    expect(r.json().pairs[1]).toMatchObject({ action: 'disable', result: 'done' });
    expect(r.json().env.shop.POSTGRESQL_SLAVE_ADDRESSES).toBe(`127.0.0.1:${replica.port}`);

    expect(await tableOn(dr, 'orders')).toContain('just-before-disable');
    await dr.query(`INSERT INTO orders VALUES ('written-on-promoted-dr')`);
    expect(await tableOn(dr, 'orders')).toContain('written-on-promoted-dr');
    const slots = await master.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots ORDER BY 1');
    expect(slots.map((s) => s.slot_name)).toEqual(['dbrepl_shop__pg_replica']);
    const conninfo = await dr.query<{ primary_conninfo: string }>('SHOW primary_conninfo');
    expect(conninfo[0]!.primary_conninfo).toBe('');
    // A restart does not turn it back into a slave.
    await dr.stop();
    await dr.start();
    expect((await dr.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
    const next = await run('plan', '--json', '--detailed-exitcode');
    expect(next.code).toBe(0);
    expect(next.json().pairs[1]).toMatchObject({ live: 'standalone', action: 'none' });
  });

  test('an unreachable server is reported with the reason; the other pairs are still inspected', async () => {
    const deadPort = await freePort();
    const file = writeYaml(dir, {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPLICATION_PASSWORD}' } },
      applications: {
        shop: { servers: { 'pg-main': server(master, 'MASTER_PASSWORD'), 'pg-replica': server(replica, 'REPLICA_PASSWORD') } },
        ghost: { servers: { pg: { engine: 'postgresql', host: '127.0.0.1', port: deadPort, password: '${DR_PASSWORD}' } } },
      },
      replications: [
        { master: 'shop/pg-main', slave: 'shop/pg-replica' },
        { master: 'shop/pg-main', slave: 'ghost/pg' },
      ],
    }, 'unreachable.yml');
    const r = await dbrepl(['status', '--json', '-c', file], env);
    expect(r.code).toBe(1);
    const [ok, ghost] = r.json().pairs;
    expect(ok.state).toBe('replicating');
    expect(ghost.state).toBe('unreachable');
    expect(ghost.error).toMatch(new RegExp(`ghost/pg unreachable: cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${deadPort}: .*ECONNREFUSED`));
  });
});
