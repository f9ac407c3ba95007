/**
 * The action against a GitHub API double at the HTTP level (test/support/github.ts): the
 * plan as one pull-request comment, found again across pages and updated in place; after
 * an apply, each application's variables as environment secrets (decrypted here with the
 * environment's private key and compared) or variables; nothing written when nothing
 * changed; a name the topology lost emptied; rate limits retried after retry-after; a
 * token without the permission named. The bundle runs as the runner runs it, against real
 * PostgreSQL clusters; every output is scanned for secrets and tokens.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PgCluster, startPostgres } from '../support/postgres';
import { startRedis } from '../support/redis';
import { FakeGitHub } from '../support/github';
import { ActionRun, expectNoSecrets, runBundledAction, scratch, writeYaml } from '../support/dbrepl';

const REPL = `repl-${randomBytes(10).toString('hex')}`;
const PR_TOKEN = `ghs_pr${randomBytes(10).toString('hex')}`;
const SECRETS_TOKEN = `github_pat_${randomBytes(12).toString('hex')}`;
const WEAK_TOKEN = `github_pat_weak${randomBytes(8).toString('hex')}`;
const { pool, dir } = scratch('dbrepl-gh-', [REPL, PR_TOKEN, SECRETS_TOKEN, WEAK_TOKEN]);

let gh: FakeGitHub;
let master: PgCluster;
let replica: PgCluster;
let dr: PgCluster;
let redisPort: number;
let redisPw: string;

function config(opts: { drState?: 'enabled' | 'disabled'; withRedis?: boolean; withLegacy?: boolean } = {}): void {
  const pg = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, password: '${PG_PW}', service: c.service });
  writeYaml(dir(), {
    version: 1,
    defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
    applications: {
      shop: {
        environment: 'production',
        servers: { 'pg-main': pg(master), 'pg-replica': pg(replica), ...(opts.withRedis ? { cache: { engine: 'redis', host: '127.0.0.1', port: redisPort, password: '${REDIS_PW}' } } : {}) },
      },
      'shop-dr': { environment: 'dr', servers: { pg: pg(dr) } },
      // A MongoDB pair whose servers nobody runs: it cannot be inspected, so nothing about it is verified.
      ...(opts.withLegacy
        ? { legacy: { environment: 'legacy', servers: { a: { engine: 'mongodb', host: '127.0.0.1', port: 1 }, b: { engine: 'mongodb', host: '127.0.0.1', port: 2 } } } }
        : {}),
    },
    replications: [
      { master: 'shop/pg-main', slave: 'shop/pg-replica' },
      { master: 'shop/pg-main', slave: 'shop-dr/pg', state: opts.drState ?? 'enabled' },
      ...(opts.withLegacy ? [{ master: 'legacy/a', slave: 'legacy/b' }] : []),
    ],
  });
}

async function action(inputs: Record<string, string>, event?: { pr: number; fork?: boolean }): Promise<ActionRun> {
  const env: NodeJS.ProcessEnv = { GITHUB_API_URL: gh.url, GITHUB_REPOSITORY: 'acme/db', PG_PW: master.password, REPL_PW: REPL, REDIS_PW: redisPw };
  if (event) {
    const eventFile = path.join(dir(), `event-${Date.now()}-${event.pr}.json`);
    const head = event.fork ? 'someone/db' : 'acme/db';
    fs.writeFileSync(eventFile, JSON.stringify({ pull_request: { number: event.pr, head: { repo: { full_name: head } }, base: { repo: { full_name: 'acme/db' } } } }));
    Object.assign(env, { GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: eventFile });
  } else {
    env.GITHUB_EVENT_NAME = 'push';
  }
  const r = await runBundledAction(dir(), env, inputs);
  for (const list of gh.comments.values()) for (const c of list) expectNoSecrets(c.body, 'PR comment');
  return r;
}

const secretsOf = (env: string): Record<string, string> => Object.fromEntries(gh.environments.get(env)?.secrets ?? []);

beforeAll(async () => {
  gh = await FakeGitHub.start();
  gh.tokens.set(PR_TOKEN, { secrets: false, variables: false, administration: false, comments: true });
  gh.tokens.set(SECRETS_TOKEN, { secrets: true, variables: true, administration: true, comments: false });
  gh.tokens.set(WEAK_TOKEN, { secrets: false, variables: false, administration: false, comments: false });
  gh.addEnvironment('production');
  const password = `admin-${randomBytes(8).toString('hex')}`;
  const started = await Promise.all([0, 1, 2].map(() => pool.add(startPostgres({ password }))));
  [master, replica, dr] = [started[0]!, started[1]!, started[2]!];
  const r = await pool.add(startRedis());
  redisPort = r.port;
  redisPw = r.password;
  // Someone else's comments before ours: ours must be found again across pages.
  gh.comments.set(7, Array.from({ length: 23 }, (_, i) => ({ id: i + 1, body: `an earlier comment ${i}` })));
  config({ withRedis: true });
});

afterAll(async () => {
  await gh?.stop();
});

describe('on a pull request', () => {
  test('the plan is one comment, created once and updated in place on the next run; the summary is the same text', async () => {
    const first = await action({ command: 'plan', 'github-token': PR_TOKEN }, { pr: 7 });
    expect(first.code).toBe(0);
    const mine = gh.comments.get(7)!.filter((c) => c.body.includes('<!-- dbrepl-plan: replication.yml -->'));
    expect(mine).toHaveLength(1);
    const body = mine[0]!.body;
    expect(body).toContain('**2 to enable, 0 to disable, 0 to resync.**');
    expect(body).toMatch(/<details open><summary><b>shop\/pg-replica<\/b>: enable — slave is standalone<\/summary>/);
    expect(body).toContain('- **previous slave data** will be kept at');
    expect(body).toContain('- **replication traffic**: not encrypted');
    expect(body).toContain('- `shop` → environment `production` (secrets):');
    expect(body).toContain('  - `POSTGRESQL_SLAVE_ADDRESSES`: changed');
    // Secrets: whether they change, never their values.
    expect(body).not.toContain(`127.0.0.1:${dr.port},127.0.0.1:${replica.port}`);
    expect(first.summary).toBe(body);
    const id = mine[0]!.id;
    const second = await action({ command: 'plan', 'github-token': PR_TOKEN }, { pr: 7 });
    expect(second.code).toBe(0);
    const again = gh.comments.get(7)!.filter((c) => c.body.includes('<!-- dbrepl-plan'));
    expect(again.map((c) => c.id)).toEqual([id]);
    expect(gh.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/issues/comments/${id}`))).toHaveLength(1);
    // It looked for its comment on every page (10 per page here): three pages each run.
    expect(gh.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/issues/7/comments')).length).toBe(6);
  });

  test('with env-target variables the comment shows old -> new values', async () => {
    const r = await action({ command: 'plan', 'github-token': PR_TOKEN, 'env-target': 'variables' }, { pr: 8 });
    expect(r.code).toBe(0);
    const body = gh.comments.get(8)![0]!.body;
    // Nothing replicates yet: the live topology has no slaves, the file two.
    expect(body).toContain(`  - \`POSTGRESQL_SLAVE_ADDRESSES\`: (empty) → \`127.0.0.1:${dr.port},127.0.0.1:${replica.port}\``);
  });

  test('a pull request from a fork, whose token may not comment: the plan in the job summary and a notice, not a failure', async () => {
    const r = await action({ command: 'plan', 'github-token': WEAK_TOKEN }, { pr: 9, fork: true });
    expect(r.code).toBe(0);
    expect(r.log).toMatch(/::notice::the plan is in the job summary; it could not be posted on pull request #9 \(from a fork, whose token may not comment\)/);
    expect(r.summary).toContain('2 to enable');
    expect(gh.comments.get(9) ?? []).toEqual([]);
  });
});

describe('after an apply', () => {
  test('each application\'s variables as environment secrets, decrypted equal; a missing environment created; rate limits waited out', async () => {
    gh.faults.push({ match: /GET .*\/environments\/production\/secrets\/public-key$/, status: 403, message: 'You have exceeded a secondary rate limit', headers: { 'retry-after': '1' } });
    gh.faults.push({ match: /PUT .*\/environments\/production\/secrets\/POSTGRESQL_ADDRESS$/, status: 429, message: 'Too many requests', headers: { 'retry-after': '1' } });
    const t0 = Date.now();
    const r = await action({ command: 'apply', 'secrets-token': SECRETS_TOKEN });
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThan(2000);
    const env = JSON.parse(r.outputs.env!);
    expect(secretsOf('production')).toEqual(env.shop);
    expect(secretsOf('production').POSTGRESQL_SLAVE_ADDRESSES).toBe(`127.0.0.1:${dr.port},127.0.0.1:${replica.port}`);
    expect(secretsOf('production').REDIS_ADDRESS).toBe('127.0.0.1');
    expect(secretsOf('dr')).toEqual(env['shop-dr']);
    expect(gh.requests.some((q) => q.method === 'PUT' && q.path.endsWith('/environments/dr'))).toBe(true);
    expect(JSON.parse(gh.environments.get('production')!.variables.get('DBREPL_ENV_DIGEST')!)).toMatchObject({ v: 1, target: 'secrets', names: Object.keys(env.shop).sort() });
    expect(JSON.parse(r.outputs.written!)).toEqual([
      { application: 'shop', environment: 'production', written: Object.keys(env.shop), emptied: [], unchanged: false },
      { application: 'shop-dr', environment: 'dr', written: Object.keys(env['shop-dr']), emptied: [], unchanged: false },
    ]);
    // The values bound for secrets were masked in the log.
    expect(r.log).toContain(`::add-mask::127.0.0.1:${dr.port},127.0.0.1:${replica.port}`);
  });

  test('an apply that changes nothing writes no secret', async () => {
    const before = gh.writes(SECRETS_TOKEN).length;
    const r = await action({ command: 'apply', 'secrets-token': SECRETS_TOKEN });
    expect(r.code).toBe(0);
    expect(gh.writes(SECRETS_TOKEN).length).toBe(before);
    expect(r.log).toContain('the variables of environment production are unchanged; nothing written');
  });

  test('a variable the topology no longer has is emptied, and a disabled slave leaves the addresses', async () => {
    config({ drState: 'disabled', withRedis: true });
    const r = await action({ command: 'apply', 'secrets-token': SECRETS_TOKEN });
    expect(r.code).toBe(0);
    expect(secretsOf('production').POSTGRESQL_SLAVE_ADDRESSES).toBe(`127.0.0.1:${replica.port}`);
    config({ drState: 'disabled', withRedis: false });
    const r2 = await action({ command: 'apply', 'secrets-token': SECRETS_TOKEN });
    expect(r2.code).toBe(0);
    expect(secretsOf('production')).toMatchObject({ REDIS_ADDRESS: '', REDIS_PORT: '', REDIS_SLAVE_ADDRESSES: '' });
    expect(JSON.parse(r2.outputs.written!)[0].emptied).toEqual(['REDIS_ADDRESS', 'REDIS_PORT', 'REDIS_SLAVE_ADDRESSES']);
  });

  test('env-target variables: created, then updated', async () => {
    const r = await action({ command: 'apply', 'secrets-token': SECRETS_TOKEN, 'env-target': 'variables' });
    expect(r.code).toBe(0);
    const vars = gh.environments.get('production')!.variables;
    expect(vars.get('POSTGRESQL_SLAVE_ADDRESSES')).toBe(`127.0.0.1:${replica.port}`);
    config({ drState: 'enabled' });
    expect((await action({ command: 'apply', 'secrets-token': SECRETS_TOKEN, 'env-target': 'variables' })).code).toBe(0);
    expect(vars.get('POSTGRESQL_SLAVE_ADDRESSES')).toBe(`127.0.0.1:${dr.port},127.0.0.1:${replica.port}`);
    expect(gh.requests.some((q) => q.method === 'PATCH' && q.path.endsWith('/variables/POSTGRESQL_SLAVE_ADDRESSES'))).toBe(true);
  });

  test('an application whose pair could not be inspected after the run gets nothing written; the others do', async () => {
    config({ drState: 'disabled', withLegacy: true });
    const r = await action({ command: 'apply', 'secrets-token': SECRETS_TOKEN });
    expect(r.code).toBe(1);
    expect(r.log).toContain('::warning::the variables of legacy were not written: a pair of theirs could not be inspected after the run');
    expect(gh.environments.has('legacy')).toBe(false);
    expect(gh.requests.some((q) => q.path.includes('/environments/legacy'))).toBe(false);
    // shop's own change (dr disabled) is verified and written.
    expect(secretsOf('production').POSTGRESQL_SLAVE_ADDRESSES).toBe(`127.0.0.1:${replica.port}`);
  });

  test('a token without the permission fails naming it, and pointing away from GITHUB_TOKEN', async () => {
    config({ drState: 'disabled' });
    const r = await action({ command: 'apply', 'secrets-token': WEAK_TOKEN });
    expect(r.code).toBe(1);
    expect(r.log).toMatch(/::error::GitHub refused .* \(403: .*\): the token needs the repository permission "[^"]+" \(GitHub says: [a-z_]+=(read|write)\)\. The workflow's GITHUB_TOKEN cannot have it: pass a fine-grained personal access token or a GitHub App installation token/);
  });
});
