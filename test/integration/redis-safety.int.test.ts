/**
 * Redis data-safety defects against live redis-server instances: one server under two
 * names, a wrong replication password found by plan, and a sync that cannot complete
 * (an ACL user without the right to replicate): stopped at copy_timeout and undone, the
 * slave standalone again with its own dataset.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { RedisServer, startRedis } from '../support/redis';
import { dbrepl, scratch, SECRETS, writeYaml } from '../support/dbrepl';

const { pool, dir: scratchDir } = scratch('dbrepl-redis-safety-');
const redis = (): Promise<RedisServer> => pool.add(startRedis());

function pairConfig(name: string, m: RedisServer, s: RedisServer, opts: { slaveHost?: string; pair?: Record<string, unknown> } = {}) {
  const server = (r: RedisServer, v: string, host = r.host) => ({ engine: 'redis', host, port: r.port, password: `\${${v}}`, service: r.service });
  const file = writeYaml(scratchDir(), {
    version: 1,
    applications: { app: { servers: { main: server(m, 'M_PW') } }, other: { servers: { replica: server(s, 'S_PW', opts.slaveHost) } } },
    replications: [{ master: 'app/main', slave: 'other/replica', ...opts.pair }],
  }, `${name}.yml`);
  return { file, env: { ...process.env, M_PW: m.password, S_PW: s.password, R_PW: 'unused' } };
}


test('one server under two names is refused by plan and apply; its data stays', async () => {
  const s = await redis();
  await s.call('SET', 'precious', '42');
  const { file, env } = pairConfig('two-names', s, s, { slaveHost: 'localhost' });
  const plan = await dbrepl(['plan', '--json', '-c', file], env);
  expect(plan.code).toBe(1);
  expect(plan.json().pairs[0].error).toMatch(/^app\/main \(127\.0\.0\.1:\d+\) and other\/replica \(localhost:\d+\) are the same server \(run_id [0-9a-f]{40}\)/);
  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.code).toBe(1);
  expect(await s.call('GET', 'precious')).toBe('42');
  expect((await s.info()).role).toBe('master');
});

test('a wrong replication password is found by plan', async () => {
  const m = await redis();
  const s = await redis();
  const good = randomBytes(8).toString('hex');
  const wrong = randomBytes(8).toString('hex');
  SECRETS.add(good);
  SECRETS.add(wrong);
  await m.call('ACL', 'SETUSER', 'replicator', 'on', `>${good}`, '+psync', '+replconf', '+ping');
  const { file, env } = pairConfig('wrong-password', m, s, { pair: { replication: { user: 'replicator', password: wrong } } });
  const plan = await dbrepl(['plan', '--json', '-c', file], env);
  expect(plan.code).toBe(1);
  expect(plan.json().pairs[0].error).toMatch(/the login other\/replica would use at app\/main \(replicator\) does not work: .*WRONGPASS/);
  expect((await s.info()).role).toBe('master');
});

test('a sync that cannot complete is stopped at copy_timeout and undone: standalone again, its own data', async () => {
  const m = await redis();
  const s = await redis();
  await m.call('SET', 'on-master', '1');
  await s.call('SET', 'own', 'kept');
  const pw = randomBytes(8).toString('hex');
  SECRETS.add(pw);
  // It may log in, but not replicate (no PSYNC/SYNC): the link never comes up.
  await m.call('ACL', 'SETUSER', 'replicator', 'on', `>${pw}`, '+ping', '+replconf');
  const { file, env } = pairConfig('no-sync', m, s, { pair: { replication: { user: 'replicator', password: pw }, copy_timeout: '3s' } });
  expect((await dbrepl(['plan', '--json', '-c', file], env)).json().pairs[0].error).toBeNull();
  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.code).toBe(1);
  const p = r.json().pairs[0];
  expect(p.error).toMatch(/step "slave: wait until the initial sync has finished and the link is up" failed: timed out after 3s .*; its replication was put back as it was \(REPLICAOF NO ONE\); its dataset from before is kept at .*dump\.dbrepl-.*\.rdb/);
  const info = await s.info();
  expect(info.role).toBe('master');
  expect(await s.call('GET', 'own')).toBe('kept');
  expect(fs.readFileSync(s.configFile, 'utf8')).not.toMatch(/^replicaof /m);
  await expect(s.call('SET', 'writable', 'yes')).resolves.toBe('OK');
});

test('the undo puts back the masterauth the slave had (for the master it followed before), and rewrites the file', async () => {
  const m = await redis();
  const s = await redis();
  const before = randomBytes(8).toString('hex');
  SECRETS.add(before);
  await s.call('CONFIG', 'SET', 'masterauth', before);
  await s.call('CONFIG', 'REWRITE');
  const pw = randomBytes(8).toString('hex');
  SECRETS.add(pw);
  await m.call('ACL', 'SETUSER', 'replicator', 'on', `>${pw}`, '+ping', '+replconf');
  const { file, env } = pairConfig('masterauth-back', m, s, { pair: { replication: { user: 'replicator', password: pw }, copy_timeout: '2s' } });
  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.code).toBe(1);
  // It got as far as the sync, so masterauth had been changed before the undo.
  expect(r.json().pairs[0].error).toMatch(/^step "slave: wait until the initial sync has finished and the link is up" failed/);
  expect(await s.call('CONFIG', 'GET', 'masterauth')).toEqual(['masterauth', before]);
  expect(await s.call('CONFIG', 'GET', 'masteruser')).toEqual(['masteruser', '']);
  const conf = fs.readFileSync(s.configFile, 'utf8');
  expect(conf).not.toContain(pw);
  expect(conf).not.toMatch(/^masteruser /m);
});

test('two servers sharing one directory (as /var/lib/redis) keep separate locks and copies, and both are enabled in one run', async () => {
  const m = await redis();
  const a = await redis();
  const b = await pool.add(startRedis({ settings: { dir: a.base, dbfilename: 'dump-b.rdb' } }));
  await a.call('SET', 'mine', 'a');
  await b.call('SET', 'mine', 'b');
  const server = (r: RedisServer, v: string) => ({ engine: 'redis', host: r.host, port: r.port, password: `\${${v}}`, service: r.service });
  const file = writeYaml(scratchDir(), {
    version: 1,
    applications: { app: { servers: { main: server(m, 'M_PW'), a: server(a, 'A_PW'), b: server(b, 'B_PW') } } },
    replications: [{ master: 'app/main', slave: 'app/a' }, { master: 'app/main', slave: 'app/b' }],
  }, 'shared-dir.yml');
  const env = { ...process.env, M_PW: m.password, A_PW: a.password, B_PW: b.password };
  const plan = (await dbrepl(['plan', '--json', '-c', file], env)).json();
  expect(plan.pairs.map((p: any) => p.preserved)).toEqual([expect.stringMatching(/\/dump\.dbrepl-\d{8}T\d{9}Z\.rdb$/), expect.stringMatching(/\/dump-b\.dbrepl-\d{8}T\d{9}Z\.rdb$/)]);
  const r = await dbrepl(['apply', '--json', '-c', file], env);
  expect(r.json().pairs.map((p: any) => [p.result, p.error])).toEqual([['done', null], ['done', null]]);
  expect(fs.readdirSync(a.base).filter((f) => f.includes('.dbrepl-')).sort()).toEqual([expect.stringMatching(/^dump-b\.dbrepl-.*\.rdb$/), expect.stringMatching(/^dump\.dbrepl-.*\.rdb$/)]);
});

test('a full sync the master keeps cutting (its replica buffer too small under writes) fails after a few restarts: the slave detached, the forks stopped', async () => {
  const m = await redis();
  const s = await redis();
  await m.call('EVAL', "for i=1,20000 do redis.call('SET', 'k:' .. i, string.rep('v', 500)) end", 0);
  await s.call('SET', 'own', 'kept');
  // A buffer far below what a sync under writes needs; each sync slowed (Redis's own testing knob) so writes pile up.
  await m.call('CONFIG', 'SET', 'client-output-buffer-limit', 'replica 64kb 32kb 5');
  await m.call('CONFIG', 'SET', 'rdb-key-save-delay', '50');
  await m.call('CONFIG', 'SET', 'repl-diskless-sync-delay', '0');
  const writer = m.client();
  writer.on('error', () => undefined);
  let writing = true;
  const writes = (async () => {
    for (let i = 0; writing; i++) await writer.set(`w:${i % 1000}`, 'x'.repeat(4096)).catch(() => undefined);
  })();
  try {
    const { file, env } = pairConfig('sync-loop', m, s);
    const plan = await dbrepl(['plan', '--json', '-c', file], env);
    expect(plan.code).toBe(1);
    expect(plan.json().pairs[0].error).toMatch(/client-output-buffer-limit replica hard limit 64\.0 KiB is below the dataset .*--force/);
    const r = await dbrepl(['apply', '--json', '--force', '-c', file], env);
    expect(r.code).toBe(1);
    expect(r.json().pairs[0].error).toMatch(/the full sync of other\/replica started over \d+ times .*client-output-buffer-limit replica \(64\.0 KiB hard/);
    // Detached: standalone with its own data; the master forks no more.
    expect((await s.info()).role).toBe('master');
    expect(await s.call('GET', 'own')).toBe('kept');
    const syncs = Number(/sync_full:(\d+)/.exec(String(await m.call('INFO', 'stats')))![1]);
    await new Promise((res) => setTimeout(res, 3000));
    expect(Number(/sync_full:(\d+)/.exec(String(await m.call('INFO', 'stats')))![1])).toBe(syncs);
  } finally {
    writing = false;
    await writes;
    writer.disconnect();
  }
});

test('a disable whose CONFIG REWRITE fails is a failure saying what a restart would do, nothing changed (still replicating); fixed, the disable survives a restart', async () => {
  const m = await redis();
  // Run as its own user (as systemd does), so a directory it may not write stops CONFIG REWRITE.
  const s = await pool.add(startRedis({ user: 'redis' }));
  await m.call('SET', 'k', 'v');
  const { file, env } = pairConfig('rewrite-fails', m, s);
  expect((await dbrepl(['apply', '--json', '-c', file], env)).json().pairs[0].result).toBe('done');
  const { file: off } = pairConfig('rewrite-fails-off', m, s, { pair: { state: 'disabled' } });
  fs.chmodSync(s.base, 0o555);
  try {
    const r = await dbrepl(['apply', '--json', '-c', off], env);
    expect(r.code).toBe(1);
    const error = r.json().pairs[0].error as string;
    expect(error).toMatch(/CONFIG REWRITE failed \(.*Permission denied.*\); nothing was changed, it still replicates: .*a restart would make it a replica again.*Make .*redis\.conf and its directory writable/s);
    // Still replicating, on the same link (no new full sync).
    const info = await s.info();
    expect([info.role, info.master_port, info.master_link_status]).toEqual(['slave', String(m.port), 'up']);
    expect(fs.readFileSync(s.logFile, 'utf8').match(/Full resync from master/g)?.length).toBe(1);
  } finally {
    fs.chmodSync(s.base, 0o755);
  }
  expect((await dbrepl(['apply', '--json', '-c', off], env)).json().pairs[0].result).toBe('done');
  await s.stop();
  await s.start();
  expect((await s.info()).role).toBe('master');
  expect(await s.call('GET', 'k')).toBe('v');
});
