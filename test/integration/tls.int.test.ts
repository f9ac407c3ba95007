/**
 * TLS to every server, with certificates made by the tests (openssl): the tool's own
 * connections verified against the file's CA and host (and refused for a certificate that
 * names another host), and replication channels set up over TLS and verified encrypted on
 * the servers themselves (pg_stat_ssl; MariaDB's REQUIRE SSL login and slave status).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startPostgres } from '../support/postgres';
import { startMariaDB } from '../support/mariadb';
import { issue, makeCa, Pem } from '../support/tls';
import { dbrepl, scratch, writeYaml } from '../support/dbrepl';
import { eventually } from '../support/sh';

const REPL = `repl-${randomBytes(10).toString('hex')}`;
const { pool, dir } = scratch('dbrepl-tls-', [REPL]);
let ca: Pem;
let good: Pem;
let wrongName: Pem;

beforeAll(async () => {
  ca = await makeCa(dir());
  good = await issue(dir(), ca, 'local', ['127.0.0.1', 'localhost']);
  wrongName = await issue(dir(), ca, 'other', ['10.9.9.9', 'db.elsewhere.example']);
});

const tls = (mode: string) => ({ mode, ca: '${TLS_CA}' });

describe('PostgreSQL', () => {
  test('verify-full: the tool connects over TLS, and the replication channel is TLS on the master', async () => {
    const pw = randomBytes(8).toString('hex');
    const hba = ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n');
    const master = await pool.add(startPostgres({ password: pw, tls: good, hba }));
    const slave = await pool.add(startPostgres({ password: pw, tls: good, hba }));
    const server = (c: typeof master) => ({ engine: 'postgresql', host: c.host, port: c.port, password: '${PG_PW}', service: c.service, tls: tls('verify-full') });
    const file = writeYaml(dir(), {
      version: 1,
      applications: { shop: { servers: { main: server(master) } }, dr: { servers: { pg: server(slave) } } },
      replications: [{ master: 'shop/main', slave: 'dr/pg', replication: { user: 'replicator', password: '${REPL_PW}' } }],
    }, 'pg-tls.yml');
    const env = { ...process.env, PG_PW: pw, REPL_PW: REPL, TLS_CA: ca.cert };
    const plan = (await dbrepl(['plan', '--json', '-c', file], env)).json();
    expect(plan.pairs[0]).toMatchObject({ action: 'enable', error: null, replication_tls: 'verify-full' });
    expect(plan.pairs[0].steps.join('\n')).toContain('hostssl replication "replicator" 127.0.0.1/32');
    const r = await dbrepl(['apply', '--json', '-c', file], env);
    expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
    // The walsender serving the slave speaks TLS.
    const ssl = await master.query<{ ssl: boolean }>('SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_replication r USING (pid)');
    expect(ssl).toEqual([{ ssl: true }]);
    const conninfo = (await slave.query<{ c: string }>('SELECT current_setting(\'primary_conninfo\') AS c'))[0]!.c;
    expect(conninfo).toMatch(/sslmode='?verify-full/);
    expect(conninfo).toMatch(/sslrootcert=\S*\.dbrepl-tls\/shop_main\.ca\.crt/);
    const caFile = /sslrootcert=(\S+)/.exec(conninfo)![1]!.replace(/'/g, '');
    expect(fs.statSync(caFile).mode & 0o777).toBe(0o600);
    await master.query('CREATE TABLE t AS SELECT 5 AS v');
    await eventually(async () => (await slave.query<{ v: number }>('SELECT v FROM t').catch(() => []))[0]?.v === 5, 20_000, 'row on the slave');
    // Disabled, the slave needs the master's TLS files no more: they are removed.
    const disabled = fs.readFileSync(file, 'utf8').replace("slave: dr/pg", "slave: dr/pg\n    state: disabled");
    fs.writeFileSync(file, disabled);
    expect((await dbrepl(['apply', '--json', '-c', file], env)).json().pairs[0]).toMatchObject({ action: 'disable', result: 'done' });
    expect(fs.existsSync(caFile)).toBe(false);
  });

  test("a server without tls is reached without TLS, whatever the runner's PGSSLMODE says", async () => {
    const pw = randomBytes(8).toString('hex');
    const c = await pool.add(startPostgres({ password: pw }));
    const file = writeYaml(dir(), {
      version: 1,
      applications: { a: { servers: { one: { engine: 'postgresql', host: c.host, port: c.port, password: '${PG_PW}' }, two: { engine: 'postgresql', host: c.host, port: c.port, password: '${PG_PW}' } } } },
    }, 'pg-plain.yml');
    process.env.PGSSLMODE = 'require';
    try {
      const r = await dbrepl(['status', '--json', '-c', file], { ...process.env, PG_PW: pw });
      expect(r.code).toBe(0);
      expect(r.stderr).not.toMatch(/cannot inspect/);
    } finally {
      delete process.env.PGSSLMODE;
    }
  });

  test('verify-full refuses a certificate that names another host; require accepts it (encrypted, not verified)', async () => {
    const pw = randomBytes(8).toString('hex');
    const c = await pool.add(startPostgres({ password: pw, tls: wrongName }));
    const file = (mode: string) =>
      writeYaml(dir(), {
        version: 1,
        applications: { a: { servers: { one: { engine: 'postgresql', host: c.host, port: c.port, password: '${PG_PW}', tls: tls(mode) }, two: { engine: 'postgresql', host: c.host, port: c.port + 1, password: '${PG_PW}' } } } },
        replications: [{ master: 'a/one', slave: 'a/two', replication: { user: 'r', password: 'x' } }],
      }, `pg-wrong-${mode}.yml`);
    const env = { ...process.env, PG_PW: pw, TLS_CA: ca.cert };
    const refused = (await dbrepl(['status', '--json', '-c', file('verify-full')], env)).json().pairs[0];
    expect(refused.state).toBe('unreachable');
    expect(refused.error).toMatch(/a\/one unreachable: cannot connect to PostgreSQL at 127\.0\.0\.1:\d+: .*(IP: 127\.0\.0\.1 is not in the cert's list|does not match certificate)/);
    const required = (await dbrepl(['status', '--json', '-c', file('require')], env)).json().pairs[0];
    expect(required.error).not.toMatch(/a\/one unreachable/);
  });
});

describe('MariaDB', () => {
  test('verify-full: the replication login requires TLS and the slave replicates over it', async () => {
    const [m, s] = await Promise.all([
      pool.add(startMariaDB({ tls: { pem: good, ca }, serverId: 11 })),
      pool.add(startMariaDB({ tls: { pem: good, ca }, serverId: 12 })),
    ]);
    await m.query('CREATE DATABASE shop');
    await m.query(`CREATE TABLE shop.t AS SELECT 'over tls' AS v`);
    const server = (x: typeof m, v: string) => ({ engine: 'mysql', host: x.host, port: x.port, user: 'admin', password: `\${${v}}`, service: x.service, options_file: x.dbreplOptionsFile, tls: tls('verify-full') });
    const file = writeYaml(dir(), {
      version: 1,
      applications: { shop: { servers: { db: server(m, 'M_PW') } }, dr: { servers: { db: server(s, 'S_PW') } } },
      replications: [{ master: 'shop/db', slave: 'dr/db', replication: { user: 'replicator', password: '${REPL_PW}' } }],
    }, 'my-tls.yml');
    const env = { ...process.env, M_PW: m.password, S_PW: s.password, REPL_PW: REPL, TLS_CA: ca.cert };
    const plan = (await dbrepl(['plan', '--json', '-c', file], env)).json();
    expect(plan.pairs[0]).toMatchObject({ error: null, replication_tls: 'verify-full' });
    expect(plan.pairs[0].steps.join('\n')).toMatch(/MASTER_SSL=1, MASTER_SSL_CA='[^']*\.dbrepl-tls\/shop_db\.ca\.crt', MASTER_SSL_VERIFY_SERVER_CERT=1/);
    const r = await dbrepl(['apply', '--json', '-c', file], env);
    expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
    const grants = (await m.query(`SHOW CREATE USER 'replicator'@'127.0.0.1'`)).map((g: any) => String(Object.values(g)[0]));
    expect(grants[0]).toMatch(/REQUIRE SSL/);
    const status = (await s.query('SHOW SLAVE STATUS'))[0] as any;
    expect([status.Master_SSL_Allowed, status.Master_SSL_Verify_Server_Cert, status.Slave_IO_Running]).toEqual(['Yes', 'Yes', 'Yes']);
    await m.query(`INSERT INTO shop.t VALUES ('later')`);
    await eventually(async () => Number(((await s.query('SELECT COUNT(*) AS n FROM shop.t'))[0] as any).n) === 2, 20_000, 'row over TLS');
    expect(path.basename(status.Master_SSL_CA_File ?? '')).toBe('shop_db.ca.crt');
    // The slave's own CA served the copy programs only: gone; the master's stays for the channel.
    expect(fs.existsSync(path.join(path.dirname(status.Master_SSL_CA_File), 'dr_db.ca.crt'))).toBe(false);
    expect(fs.existsSync(status.Master_SSL_CA_File)).toBe(true);
  });
});

describe('Redis', () => {
  test('verify-full: the tool speaks TLS to the TLS port, and the slave replicates from it over TLS only', async () => {
    const { startRedis } = await import('../support/redis');
    const { freePort } = await import('../support/sh');
    const tlsSettings = async () => ({ 'tls-port': String(await freePort()), 'tls-cert-file': good.certFile, 'tls-key-file': good.keyFile, 'tls-ca-cert-file': ca.certFile, 'tls-auth-clients': 'no' });
    const mSettings = await tlsSettings();
    const sSettings = await tlsSettings();
    const m = await pool.add(startRedis({ settings: mSettings }));
    const s = await pool.add(startRedis({ settings: sSettings }));
    await m.call('SET', 'k', 'over tls');
    const server = (x: typeof m, v: string, port: string) => ({ engine: 'redis', host: x.host, port: Number(port), password: `\${${v}}`, service: x.service, tls: tls('verify-full') });
    const file = writeYaml(dir(), {
      version: 1,
      applications: { shop: { servers: { cache: server(m, 'M_PW', mSettings['tls-port']) } }, dr: { servers: { cache: server(s, 'S_PW', sSettings['tls-port']) } } },
      replications: [{ master: 'shop/cache', slave: 'dr/cache' }],
    }, 'redis-tls.yml');
    const env = { ...process.env, M_PW: m.password, S_PW: s.password, TLS_CA: ca.cert };
    const plan = (await dbrepl(['plan', '--json', '-c', file], env)).json();
    expect(plan.pairs[0]).toMatchObject({ error: null, replication_tls: 'verify-full' });
    expect(plan.pairs[0].warnings).toContain(`dr/cache has a tls-ca-cert-file of its own (${ca.certFile}), which is kept: it must trust shop/cache's certificate (Redis has one CA setting for its clients and its master)`);
    expect(plan.pairs[0].steps.join('\n')).toContain('CONFIG SET tls-replication yes');
    const r = await dbrepl(['apply', '--json', '-c', file], env);
    expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
    // The master's TLS port speaks nothing but TLS: a link that is up there is encrypted.
    const info = await s.info();
    expect([info.master_port, info.master_link_status]).toEqual([mSettings['tls-port'], 'up']);
    expect(await s.call('GET', 'k')).toBe('over tls');
    expect(await s.call('CONFIG', 'GET', 'tls-replication')).toEqual(['tls-replication', 'yes']);
    expect(fs.readFileSync(s.configFile, 'utf8')).toMatch(/^tls-replication yes$/m);
  });
});
