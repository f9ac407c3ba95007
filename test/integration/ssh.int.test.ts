/**
 * Remote hosts over SSH: database servers in network namespaces of their own (test/support/lab.ts),
 * each with its own sshd, listening only on a database network the runner has no route to.
 * The runner reaches them only through SSH (commands, and tunnels for its own connections);
 * copies flow between the database hosts. PostgreSQL and MariaDB pairs are enabled, resynced
 * and disabled this way; a host key that does not match stops the run before any credential
 * is sent; a jump host; a connection dropped in the middle of a step; the bundled dist/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Lab, netnsAvailable, SSH_USER } from '../support/lab';
import { PgCluster, startPostgres } from '../support/postgres';
import { MariaServer, startMariaDB } from '../support/mariadb';
import { dbrepl, expectNoSecrets, scratch, SECRETS, writeYaml } from '../support/dbrepl';
import { eventually, sh } from '../support/sh';

const refused = netnsAvailable();
if (refused) console.warn(`ssh suite skipped: ${refused}`);
const suite = refused ? describe.skip : describe;

const REPL = `repl-${randomBytes(10).toString('hex')}`;
const PG_PW = `pg-${randomBytes(10).toString('hex')}`;
const ROOT = path.join(__dirname, '../..');
const { pool, dir } = scratch('dbrepl-ssh-', [REPL, PG_PW]);
const HBA = ['local all all trust', 'host all all 10.77.0.0/16 scram-sha-256', ''].join('\n');

let lab: Lab;
let env: NodeJS.ProcessEnv;

const ssh = (host: string, extra: Record<string, unknown> = {}) => ({ host, user: SSH_USER, private_key: '${SSH_KEY}', known_hosts: '${KNOWN_HOSTS}', sudo: true, ...extra });
const pgServer = (c: PgCluster, sshHost: string, extra: Record<string, unknown> = {}) => ({ engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: '${PG_PW}', service: c.service, ssh: ssh(sshHost), ...extra });
const inRecovery = async (c: PgCluster): Promise<boolean> => (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r;

suite('over SSH, in network namespaces', () => {
  let pgA: PgCluster;
  let pgB: PgCluster;
  let file: string;

  beforeAll(async () => {
    lab = await Lab.create(['a', 'b', 'c'], { hidden: ['c'] });
    SECRETS.add(lab.clientKey);
    env = { ...process.env, SSH_KEY: lab.clientKey, KNOWN_HOSTS: lab.knownHosts, REPL_PW: REPL, PG_PW };
    [pgA, pgB] = await Promise.all([
      pool.add(startPostgres({ password: PG_PW, hba: HBA, netns: lab.host('a').ns, address: lab.host('a').back })),
      pool.add(startPostgres({ password: PG_PW, hba: HBA, netns: lab.host('b').ns, address: lab.host('b').back })),
    ]);
    await pgA.query('CREATE TABLE orders (v text)');
    await pgA.query(`INSERT INTO orders VALUES ('before enable')`);
    await pgB.query('CREATE TABLE mine AS SELECT 1 AS v');
    file = writeYaml(dir(), {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: { shop: { servers: { main: pgServer(pgA, lab.host('a').front) } }, dr: { servers: { pg: pgServer(pgB, lab.host('b').front) } } },
      replications: [{ master: 'shop/main', slave: 'dr/pg' }],
    }, 'pg.yml');
  });

  afterAll(async () => {
    await pool.destroyAll();
    if (lab) await lab.destroy();
  });

  test('the runner has no route to the databases: only SSH reaches them', async () => {
    expect(await Lab.reachable(pgA.host, pgA.port)).toBe(false);
    expect(await Lab.reachable(lab.host('a').front, 22)).toBe(true);
  });

  test('PostgreSQL: plan, enable, a row on the master read on the slave, all through SSH', async () => {
    const plan = await dbrepl(['plan', '--json', '-c', file], env);
    expect(plan.json().pairs[0]).toMatchObject({ live: 'standalone', action: 'enable', error: null });
    const t0 = Date.now();
    const r = await dbrepl(['apply', '--json', '-c', file], env);
    console.log(`enable over SSH: ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
    expect(r.stderr).toContain(`ssh ${SSH_USER}@${lab.host('b').front}`);
    await pgA.query(`INSERT INTO orders VALUES ('after enable')`);
    await eventually(async () => (await pgB.query<{ n: number }>('SELECT count(*)::int AS n FROM orders'))[0]!.n === 2, 20_000, 'row on the slave');
    // The slave streams from the master's address on the database network, not through the runner.
    const wr = await pgB.query<{ sender_host: string }>('SELECT sender_host FROM pg_stat_wal_receiver');
    expect(wr[0]!.sender_host).toBe(pgA.host);
    expect((await dbrepl(['status', '--json', '-c', file], env)).json().pairs[0].state).toBe('replicating');
  });

  test('resync over SSH, then the bundled dist/cli.js reports it (ssh2 inside the bundle)', async () => {
    const r = await dbrepl(['resync', '--pair', 'dr/pg', '--json', '-c', file], env);
    expect(r.json().pairs[0]).toMatchObject({ action: 'resync', result: 'done', error: null });
    const bundled = await sh(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'status', '--json', '-c', file], { env, allowFail: true });
    expectNoSecrets(bundled.stdout + bundled.stderr, 'the bundled CLI over SSH');
    expect(bundled.code).toBe(0);
    expect(JSON.parse(bundled.stdout).pairs[0].state).toBe('replicating');
  });

  test('a host key that does not match stops the run before any credential is sent, naming both fingerprints', async () => {
    const other = (await sh('sh', ['-c', `ssh-keygen -q -t ed25519 -N '' -f ${dir()}/other && cat ${dir()}/other.pub`])).stdout.trim().split(/\s+/);
    const wrong = lab.knownHosts.split('\n').map((l) => (l.startsWith(`${lab.host('b').front} `) ? `${lab.host('b').front} ${other[0]} ${other[1]}` : l)).join('\n');
    const before = fs.readFileSync(lab.host('b').sshdLog, 'utf8').length;
    const r = await dbrepl(['plan', '--json', '-c', file], { ...env, KNOWN_HOSTS: wrong });
    expect(r.code).toBe(1);
    const p = r.json().pairs[0];
    expect(p.live).toBe('unreachable');
    const seen = lab.host('b').hostKeyFingerprint;
    const expected = (await sh('sh', ['-c', `ssh-keygen -l -f ${dir()}/other.pub`])).stdout.split(/\s+/)[1]!;
    expect(p.error).toContain(`host key of ${lab.host('b').front} changed: the host offered ${seen} (ssh-ed25519), known_hosts expects ${expected} (ssh-ed25519)`);
    // sshd saw no authentication attempt at all from that connection.
    await new Promise((res) => setTimeout(res, 300));
    const log = fs.readFileSync(lab.host('b').sshdLog, 'utf8').slice(before);
    expect(log).not.toMatch(/publickey|Accepted|Failed|Postponed/);
    // An unknown host is refused the same way.
    const unknown = await dbrepl(['plan', '--json', '-c', file], { ...env, KNOWN_HOSTS: lab.host('a').knownHosts });
    expect(unknown.json().pairs[0].error).toContain(`host key of ${lab.host('b').front} is unknown: known_hosts has no key for ${lab.host('b').front}; the host offered ${seen}`);
  });

  test('a known_hosts that lists only the host\'s RSA key is enough: that key type is asked for', async () => {
    const rsaOnly = [lab.host('a').knownHosts, lab.host('b').rsaKnownHosts].join('\n');
    const r = await dbrepl(['status', '--json', '-c', file], { ...env, KNOWN_HOSTS: rsaOnly });
    expect(r.code).toBe(0);
    expect(r.json().pairs[0].error).toBeNull();
  });

  test('plan refuses what only apply would find: a loopback master for a slave on another host, an SSH user without root', async () => {
    // A master that listens on its host's loopback only: fine for the tool (its tunnel starts on that host), not for a slave elsewhere.
    const local = await pool.add(startPostgres({ password: PG_PW, netns: lab.host('a').ns, address: '127.0.0.1', hba: ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256', ''].join('\n') }));
    const loop = writeYaml(dir(), {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: { shop: { servers: { main: pgServer(local, lab.host('a').front) } }, dr: { servers: { pg: pgServer(pgB, lab.host('b').front) } } },
      replications: [{ master: 'shop/main', slave: 'dr/pg' }],
    }, 'loopback.yml');
    const p1 = (await dbrepl(['plan', '--json', '-c', loop], env)).json().pairs[0];
    expect(p1.error ?? '').toContain("shop/main's host 127.0.0.1 is a loopback address, but dr/pg runs on another host");
    const noSudo = writeYaml(dir(), {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: { shop: { servers: { main: pgServer(pgA, lab.host('a').front) } }, dr: { servers: { pg: { ...pgServer(pgB, ''), ssh: ssh(lab.host('b').front, { sudo: false }) } } } },
      replications: [{ master: 'shop/main', slave: 'dr/pg' }],
    }, 'no-sudo.yml');
    const before = await inRecovery(pgB);
    const r = await dbrepl(['resync', '--pair', 'dr/pg', '--json', '-c', noSudo], env);
    expect(r.code).toBe(1);
    expect(r.json().pairs[0].error).toMatch(/host commands for dr\/pg run as uid \d+ on ssh dbrepl@.*; dbrepl needs root there to act as the server's own user: log in as root or set ssh\.sudo: true/);
    expect(await inRecovery(pgB)).toBe(before);
  });

  test('a PEM key with a passphrase works; a wrong passphrase is named as such', async () => {
    const key = path.join(dir(), 'id_rsa_pem');
    const passphrase = `pp-${randomBytes(6).toString('hex')}`;
    SECRETS.add(passphrase);
    await sh('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', passphrase, '-f', key]);
    lab.authorize(fs.readFileSync(`${key}.pub`, 'utf8'));
    const pem = fs.readFileSync(key, 'utf8');
    SECRETS.add(pem);
    expect(pem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED/);
    const pemFile = writeYaml(dir(), {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' }, ssh: { user: SSH_USER, private_key: '${PEM_KEY}', passphrase: '${PEM_PASS}', known_hosts: '${KNOWN_HOSTS}', sudo: true } },
      applications: { shop: { servers: { main: { ...pgServer(pgA, ''), ssh: { host: lab.host('a').front } } } }, dr: { servers: { pg: { ...pgServer(pgB, ''), ssh: { host: lab.host('b').front } } } } },
      replications: [{ master: 'shop/main', slave: 'dr/pg' }],
    }, 'pem.yml');
    const ok = await dbrepl(['status', '--json', '-c', pemFile], { ...env, PEM_KEY: pem, PEM_PASS: passphrase });
    expect(ok.code).toBe(0);
    expect(ok.json().pairs[0]).toMatchObject({ error: null, state: expect.not.stringMatching(/unreachable/) });
    const wrong = await dbrepl(['status', '--json', '-c', pemFile], { ...env, PEM_KEY: pem, PEM_PASS: 'not-the-passphrase' });
    expect(wrong.code).toBe(1);
    expect(wrong.json().pairs[0].error).toMatch(/cannot use the SSH private key: .*(passphrase|decrypt)/i);
  });

  test('a jump host: a server on a host the runner cannot reach, through ssh.via', async () => {
    const hidden = lab.host('c');
    expect(hidden.front).toBe('');
    const pgC = await pool.add(startPostgres({ password: PG_PW, hba: HBA, netns: hidden.ns, address: hidden.back }));
    const viaFile = writeYaml(dir(), {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: {
        shop: { servers: { main: pgServer(pgA, lab.host('a').front) } },
        vault: { servers: { pg: { ...pgServer(pgC, hidden.back), ssh: ssh(hidden.back, { via: { host: lab.host('a').front } }) } } },
      },
      replications: [{ master: 'shop/main', slave: 'vault/pg' }],
    }, 'via.yml');
    const r = await dbrepl(['apply', '--json', '-c', viaFile], env);
    expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
    expect(r.stderr).toContain(`ssh ${SSH_USER}@${hidden.back} via ${lab.host('a').front}`);
    expect(await inRecovery(pgC)).toBe(true);
  });

  test('a connection dropped in the middle of a step: a clear error, the slave put back, and the next run converges', async () => {
    const marker = path.join(dir(), 'stopping');
    const slowStop = `touch ${marker}; sleep 3; ${pgB.service.stop}`;
    const dropFile = writeYaml(dir(), {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: { shop: { servers: { main: pgServer(pgA, lab.host('a').front) } }, dr: { servers: { pg: pgServer(pgB, lab.host('b').front, { service: { stop: slowStop, start: pgB.service.start } }) } } },
      replications: [{ master: 'shop/main', slave: 'dr/pg' }],
    }, 'drop.yml');
    fs.rmSync(marker, { force: true });
    const running = dbrepl(['resync', '--pair', 'dr/pg', '--json', '-c', dropFile], env);
    await eventually(async () => fs.existsSync(marker), 30_000, 'the stop command to start');
    // Cut the SSH session to b: kill the sshd processes serving the dbrepl user there.
    await lab.exec('b', ['pkill', '-f', `sshd: ${SSH_USER}`], true);
    const r = await running;
    expect(r.code).toBe(1);
    const p = r.json().pairs[0];
    expect(p.result).toBe('failed');
    expect(p.error).toMatch(new RegExp(`step "slave: stop the server" failed: .*the SSH connection \\(ssh ${SSH_USER}@${lab.host('b').front.replace(/\./g, '\\.')}\\) was lost while the command ran`));
    // The stop command already running on b is not stopped by the lost session (an exec channel
    // has no terminal to hang up): after its `sleep 3` it stops the slave that the rollback had
    // left running. Known gap (issue 13's note): SSH host commands outlive a lost session. Wait
    // for it, and start the slave again as its operator would.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    await eventually(async () => !fs.existsSync(path.join(pgB.dataDir, 'postmaster.pid')) || (await pgB.isReady()), 20_000, 'the interrupted stop to finish');
    if (!(await pgB.isReady())) await pgB.start();
    // Recoverable: the next run (the connection is opened again) converges.
    const again = await dbrepl(['apply', '--json', '-c', file], env);
    expect(again.json().pairs[0].error).toBeNull();
    expect((await dbrepl(['status', '--json', '-c', file], env)).json().pairs[0].state).toBe('replicating');
  });

  test('PostgreSQL disable over SSH', async () => {
    const disabled = writeYaml(dir(), {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: { shop: { servers: { main: pgServer(pgA, lab.host('a').front) } }, dr: { servers: { pg: pgServer(pgB, lab.host('b').front) } } },
      replications: [{ master: 'shop/main', slave: 'dr/pg', state: 'disabled' }],
    }, 'pg-disabled.yml');
    const r = await dbrepl(['apply', '--json', '-c', disabled], env);
    expect(r.json().pairs[0]).toMatchObject({ action: 'disable', result: 'done' });
    expect(await inRecovery(pgB)).toBe(false);
  });

  test('Redis: a slave that listens on its Unix socket only is reached through an SSH tunnel to that socket', async () => {
    const { startRedis } = await import('../support/redis');
    const master = await pool.add(startRedis({ netns: lab.host('a').ns, address: lab.host('a').back }));
    const slave = await pool.add(startRedis({ netns: lab.host('b').ns, socketOnly: true }));
    await master.call('SET', 'k', 'through the socket');
    const redisServer = (r: typeof master, v: string, sshHost: string) => ({ engine: 'redis', host: r.host, ...(r.host.startsWith('/') ? {} : { port: r.port }), password: `\${${v}}`, service: r.service, ssh: ssh(sshHost) });
    const redisFile = writeYaml(dir(), {
      version: 1,
      applications: { shop: { servers: { cache: redisServer(master, 'R_M', lab.host('a').front) } }, dr: { servers: { cache: redisServer(slave, 'R_S', lab.host('b').front) } } },
      replications: [{ master: 'shop/cache', slave: 'dr/cache' }],
    }, 'redis-socket.yml');
    const r = await dbrepl(['apply', '--json', '-c', redisFile], { ...env, R_M: master.password, R_S: slave.password });
    expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
    expect(await slave.call('GET', 'k')).toBe('through the socket');
    expect((await slave.info()).master_link_status).toBe('up');
  });

  describe('MariaDB over SSH', () => {
    let ma: MariaServer;
    let mb: MariaServer;
    const myServer = (s: MariaServer, sshHost: string) => ({ engine: 'mysql', host: s.host, port: s.port, user: 'admin', password: `\${MY_${s === ma ? 'A' : 'B'}}`, service: s.service, options_file: s.dbreplOptionsFile, ssh: ssh(sshHost) });
    const config = (state: 'enabled' | 'disabled') =>
      writeYaml(dir(), {
        version: 1,
        defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
        applications: { shop: { servers: { db: myServer(ma, lab.host('a').front) } }, dr: { servers: { db: myServer(mb, lab.host('b').front) } } },
        replications: [{ master: 'shop/db', slave: 'dr/db', state }],
      }, `my-${state}.yml`);
    let myEnv: NodeJS.ProcessEnv;

    beforeAll(async () => {
      [ma, mb] = await Promise.all([
        pool.add(startMariaDB({ netns: lab.host('a').ns, address: lab.host('a').back, serverId: 1 })),
        pool.add(startMariaDB({ netns: lab.host('b').ns, address: lab.host('b').back, serverId: 2, logBin: false })),
      ]);
      myEnv = { ...env, MY_A: ma.password, MY_B: mb.password };
      await ma.query('CREATE DATABASE shop');
      await ma.query(`CREATE TABLE shop.t AS SELECT 'from the master' AS v`);
      await mb.query('CREATE DATABASE mine');
      await mb.query(`CREATE TABLE mine.t AS SELECT 'kept' AS v`);
    });

    test('enable by a physical copy streamed from host to host over TLS, a row replicates, resync, disable', async () => {
      expect(await Lab.reachable(ma.host, ma.port)).toBe(false);
      // Two hosts: mariabackup on a's, sent to an s_server on b's address (the runner has no route to either).
      const plan = await dbrepl(['plan', '--json', '-c', config('enabled')], myEnv);
      expect(plan.json().pairs[0].steps.join('\n')).toMatch(/mariabackup --backup --stream=mbstream .*sent over TLS \(openssl s_client to an openssl s_server listening on 10\./);
      const r = await dbrepl(['apply', '--json', '-c', config('enabled')], myEnv);
      expect(r.json().pairs[0]).toMatchObject({ result: 'done', error: null });
      await ma.query(`INSERT INTO shop.t VALUES ('after enable')`);
      await eventually(async () => Number((await mb.query<any>('SELECT COUNT(*) AS n FROM shop.t'))[0].n) === 2, 20_000, 'row on the MariaDB slave');
      // The copy ran on the slave's host and kept its data there.
      expect(fs.readdirSync(mb.base).filter((f) => f.endsWith('.sql.gz')).length).toBe(1);
      const rs = await dbrepl(['resync', '--pair', 'dr/db', '--json', '-c', config('enabled')], myEnv);
      expect(rs.json().pairs[0]).toMatchObject({ result: 'done', error: null });
      const d = await dbrepl(['apply', '--json', '-c', config('disabled')], myEnv);
      expect(d.json().pairs[0]).toMatchObject({ action: 'disable', result: 'done' });
      expect(Number((await mb.query<any>('SELECT @@read_only AS r'))[0].r)).toBe(0);
    });
  });
});
