/**
 * The CLI's contract with scripts, with no server: help and version, usage lines that match
 * the parser, one JSON document for every outcome, env per application. (Commands that
 * inspect servers are covered by test/integration/cli.int.test.ts.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { version } from '../../package.json';
import { dbrepl, tempDir } from '../support/dbrepl';

let dir: string;
const FILE = () => path.join(dir, 'replication.yml');
const run = (...args: string[]) => dbrepl(args, { PATH: process.env.PATH }, dir);

const CONFIG = `version: 1
defaults:
  replication: { user: replicator, password: "\${REPLICATION_PASSWORD}" }
applications:
  shop:
    environment: production
    servers:
      pg-main: { engine: postgresql, host: 10.0.1.5, password: "\${SHOP_PG_PASSWORD}" }
      pg-replica: { engine: postgresql, host: 10.0.1.6, password: "\${SHOP_PG_PASSWORD}" }
      cache: { engine: redis, host: 10.0.1.7 }
  reports:
    servers:
      pg: { engine: postgresql, host: 10.0.2.5, port: 5433, password: "\${REPORTS_PG_PASSWORD}" }
  billing:
    servers:
      cache: { engine: redis, host: 10.0.3.5 }
replications:
  - master: shop/pg-main
    slave: shop/pg-replica
  - master: shop/pg-main
    slave: reports/pg
`;

beforeAll(() => {
  dir = tempDir('dbrepl-cli-unit-');
  fs.writeFileSync(FILE(), CONFIG);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const COMMANDS: Array<[string[], string[]]> = [
  [['plan'], ['--config', '--only', '--json', '--detailed-exitcode', '--fence', '--max-parallel']],
  [['apply'], ['--config', '--only', '--json', '--lock-timeout', '--force', '--fence', '--max-parallel']],
  [['status'], ['--config', '--only', '--json', '--detailed-exitcode', '--max-parallel']],
  [['resync'], ['--config', '--pair', '--broken', '--json', '--lock-timeout', '--force', '--max-parallel']],
  [['env'], ['--config', '--only', '--format', '--app', '--out']],
  [['validate'], ['--config', '--json']],
  [['list'], ['--config', '--json']],
  [['preserved', 'list'], ['--config', '--only', '--older-than', '--yes', '--json', '--max-parallel']],
];

describe('help and version', () => {
  test('--version prints the package version', async () => {
    const r = await run('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`dbrepl ${version}\n`);
  });

  test.each(COMMANDS)('%s --help: exit 0, its usage line and every flag it takes, each accepted by the parser', async (cmd, flags) => {
    const r = await run(...cmd, '--help');
    expect(r.code).toBe(0);
    const usage = r.stdout.split('\n')[0]!;
    expect(usage).toMatch(new RegExp(`^usage: dbrepl ${cmd[0]} `));
    const listed = [...r.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]).filter((f) => f !== '--help');
    expect(listed.sort()).toEqual([...flags].sort());
    // The usage line names the same flags as the option list (`-c FILE` is --config).
    const inUsage = [...usage.matchAll(/--[a-z-]+/g)].map((m) => m[0]);
    expect([...inUsage, ...(usage.includes('-c FILE') ? ['--config'] : [])].sort()).toEqual([...flags].sort());
    // A flag the command does not take is a usage error naming it, not silently ignored.
    const bad = await run(...cmd, '--no-such-flag');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("Unknown option '--no-such-flag'");
    expect(bad.stderr).toContain(`usage: dbrepl ${cmd[0]}`);
  });

  test('dbrepl --help lists every command; no command is a usage error on stderr', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    for (const c of ['plan', 'apply', 'status', 'resync', 'env', 'validate', 'preserved list|remove']) expect(r.stdout).toContain(`dbrepl ${c} `);
    const none = await run();
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('usage:');
  });
});

describe('usage lines match the parser', () => {
  test('resync --pair takes several names: --pair a b, --pair a,b, --pair a --pair b', async () => {
    // Unknown pair names are refused after reading the file and before any connection: the refusal lists what was parsed.
    for (const args of [['--pair', 'x/one', 'y/two'], ['--pair', 'x/one,y/two'], ['--pair', 'x/one', '--pair', 'y/two']]) {
      const r = await dbrepl(['resync', '-c', FILE(), ...args], { PATH: process.env.PATH, REPLICATION_PASSWORD: 'repl-secret-1', SHOP_PG_PASSWORD: 'shop-secret-2', REPORTS_PG_PASSWORD: 'reports-secret-3' }, dir);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('resync names unknown pair(s): x/one, y/two');
    }
  });

  test('resync: a name without --pair, or --pair with --broken, is a usage error', async () => {
    expect((await run('resync', 'shop/pg-replica')).stderr).toContain('pair names follow --pair');
    expect((await run('resync', '--broken', '--pair', 'shop/pg-replica')).stderr).toContain('not both');
    expect((await run('resync')).stderr).toContain('resync needs --pair NAME... or --broken');
  });

  test('preserved: list or remove, remove needs --older-than or paths', async () => {
    expect((await run('preserved')).stderr).toContain('preserved takes list or remove');
    expect((await run('preserved', 'remove')).stderr).toContain('needs --older-than DURATION or the PATHs');
    expect((await run('preserved', 'remove', '--older-than', 'soon')).stderr).toContain('--older-than takes a duration such as 7d');
    expect((await run('preserved', 'list', '/var/lib/x')).stderr).toContain('takes no paths');
  });
});

describe('--json: one JSON document on stdout for every outcome', () => {
  test('a usage error', async () => {
    const r = await run('plan', '--json', '--bogus');
    expect(r.code).toBe(1);
    expect(r.json()).toEqual({ error: { code: 'USAGE', message: expect.stringContaining('--bogus') } });
  });

  test('an invalid file: every issue with file, line, column and key', async () => {
    fs.writeFileSync(path.join(dir, 'bad.yml'), 'version: 1\napplications:\n  shop:\n    servers:\n      pg: { engine: postgress, host: 10.0.1.5 }\n');
    const r = await run('plan', '--json', '-c', 'bad.yml');
    expect(r.code).toBe(1);
    expect(r.json().error).toMatchObject({ code: 'CONFIG', issues: [expect.objectContaining({ file: expect.stringMatching(/bad\.yml$/), line: 5, key: 'applications.shop.servers.pg.engine' })] });
    const v = await run('validate', '--json', '-c', 'bad.yml');
    expect(v.code).toBe(1);
    expect(v.json()).toMatchObject({ valid: false, error: { code: 'CONFIG' } });
  });

  test('a missing file', async () => {
    const r = await run('status', '--json', '-c', 'nope.yml');
    expect(r.code).toBe(1);
    expect(r.json().error.issues[0]).toMatchObject({ key: '(file)', message: expect.stringContaining('file not found') });
  });

  test('validate of a good file, with the unset variables as warnings', async () => {
    const r = await run('validate', '--json');
    expect(r.code).toBe(0);
    const doc = r.json();
    expect(doc).toMatchObject({ valid: true, applications: 3, servers: 5, pairs: 2 });
    expect(doc.warnings.join('\n')).toMatch(/SHOP_PG_PASSWORD is not set/);
  });
});

describe('env reads the file alone', () => {
  test('--only takes applications, or pairs (their applications)', async () => {
    const apps = async (...args: string[]) => Object.keys((await run('env', '--format', 'json', ...args)).json());
    expect(await apps()).toEqual(['shop', 'reports', 'billing']);
    expect(await apps('--only', 'billing')).toEqual(['billing']);
    expect(await apps('--only', 'reports/pg')).toEqual(['shop', 'reports']);
    const bad = await run('env', '--only', 'nope');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--only names no pair or application: nope');
  });

  test('--app prints one application only', async () => {
    const r = await run('env', '--app', 'reports');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('# reports\nPOSTGRESQL_ADDRESS=10.0.2.5\nPOSTGRESQL_PORT=5433\nPOSTGRESQL_SLAVE_ADDRESSES=\n');
    expect((await run('env', '--app', 'nope')).stderr).toContain('--app names no pair or application: nope');
  });

  test('--out writes one file per application, mode 0600, never two applications in one file', async () => {
    const out = path.join(dir, 'env-out');
    const r = await run('env', '--out', out);
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['billing.env', 'reports.env', 'shop.env']);
    const shop = fs.readFileSync(path.join(out, 'shop.env'), 'utf8');
    // shop and billing both have REDIS_ADDRESS: each in its own file. Slaves in the order of their references.
    expect(shop).toContain('REDIS_ADDRESS=10.0.1.7\n');
    expect(fs.readFileSync(path.join(out, 'billing.env'), 'utf8')).toBe('# billing\nREDIS_ADDRESS=10.0.3.5\nREDIS_PORT=6379\nREDIS_SLAVE_ADDRESSES=\n');
    expect(shop.match(/^# /gm)).toHaveLength(1);
    expect(shop).toContain('POSTGRESQL_SLAVE_ADDRESSES=10.0.2.5:5433,10.0.1.6\n');
    for (const f of fs.readdirSync(out)) expect(fs.statSync(path.join(out, f)).mode & 0o777).toBe(0o600);
    expect((await run('env', '--app', 'shop', '--out', out)).stderr).toContain('not both');
  });
});
