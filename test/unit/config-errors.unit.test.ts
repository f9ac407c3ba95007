/**
 * Malformed replication.yml files through the real CLI, in process. Every error must name
 * file:line:column, the offending key and what would be valid, and nothing may be
 * contacted: every server (and ssh endpoint) in these files points at a listener of this
 * test that counts connections.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { dbrepl, SECRETS, tempDir } from '../support/dbrepl';

const SENTINELS = 10;
const sentinels: net.Server[] = [];
const ports: number[] = [];
let connections = 0;
let dir: string;

const REPLICATION_PASSWORD = `repl-${randomBytes(8).toString('hex')}`;
const SHOP_PG_PASSWORD = `shop-${randomBytes(8).toString('hex')}`;
const PAIR_STATE = `state-${randomBytes(8).toString('hex')}`;
const SSH_KNOWN_HOSTS = `127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA${randomBytes(12).toString('hex')}`;

const baseEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  REPLICATION_PASSWORD,
  SHOP_PG_PASSWORD,
  PAIR_STATE,
  SSH_KNOWN_HOSTS,
});

beforeAll(async () => {
  for (const s of [REPLICATION_PASSWORD, SHOP_PG_PASSWORD, PAIR_STATE, SSH_KNOWN_HOSTS]) SECRETS.add(s);
  dir = tempDir('dbrepl-config-errors-');
  for (let i = 0; i < SENTINELS; i++) {
    const srv = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', resolve);
    });
    sentinels.push(srv);
    ports.push((srv.address() as net.AddressInfo).port);
  }
});

afterAll(async () => {
  await Promise.all(sentinels.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Strips the first newline, trailing blanks and the common indentation. */
function dedent(yaml: string): string {
  const lines = yaml.replace(/^\n/, '').replace(/\s+$/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** The file as written: dedented, `%P3%` replaced by the third sentinel's port. */
function text(yaml: string): string {
  return dedent(yaml).replace(/%P(\d+)%/g, (_, n: string) => String(ports[Number(n) - 1])) + '\n';
}

/** Runs dbrepl and fails when it opened any connection to a sentinel during the run. */
async function run(args: string[], env: NodeJS.ProcessEnv): Promise<Awaited<ReturnType<typeof dbrepl>>> {
  const before = connections;
  const result = await dbrepl(args, env);
  await new Promise((resolve) => setTimeout(resolve, 10));
  if (connections !== before) {
    throw new Error(`dbrepl ${args[0]} opened ${connections - before} connection(s) to the servers of the file (exit ${result.code}):\n${result.stdout}${result.stderr}`);
  }
  return result;
}

let fileNo = 0;
function write(yaml: string): string {
  const file = path.join(dir, `case-${++fileNo}.yml`);
  fs.writeFileSync(file, text(yaml));
  return file;
}

interface Issue {
  line: number;
  column: number;
  key: string;
  message: string;
}

/** Parses `error: <file>:<line>:<col>: <key>: <message>` lines. */
function issuesIn(stderr: string, file: string, level = 'error'): Issue[] {
  const out: Issue[] = [];
  const prefix = `${level}: ${file}:`;
  for (const raw of stderr.split('\n')) {
    if (!raw.startsWith(prefix)) continue;
    const m = /^(\d+):(\d+): (\S+): (.*)$/.exec(raw.slice(prefix.length));
    if (m) out.push({ line: Number(m[1]), column: Number(m[2]), key: m[3]!, message: m[4]! });
  }
  return out;
}

/**
 * The part every pair case shares. Each server has a port of its own (so that no two names
 * mean the same server unless a case says so). Pairs start at line PAIRS.
 */
const HEAD = `
  version: 1
  defaults:
    replication: { user: replicator, password: "\${REPLICATION_PASSWORD}" }
  applications:
    shop:
      servers:
        pg-main: { engine: postgresql, host: 127.0.0.1, port: %P1%, password: "\${SHOP_PG_PASSWORD}" }
        pg-replica: { engine: postgresql, host: 127.0.0.1, port: %P2%, password: "\${SHOP_PG_PASSWORD}" }
        pg-third: { engine: postgresql, host: 127.0.0.1, port: %P3% }
        cache: { engine: redis, host: 127.0.0.1, port: %P4% }
        mongo-a: { engine: mongodb, host: 127.0.0.1, port: %P5% }
        mongo-b: { engine: mongodb, host: 127.0.0.1, port: %P6% }
        mongo-c: { engine: mongodb, host: 127.0.0.1, port: %P7% }
    shop-dr:
      servers:
        pg: { engine: postgresql, host: 127.0.0.1, port: %P8% }
        mongo: { engine: mongodb, host: 127.0.0.1, port: %P9% }
        pg-alias: { engine: postgresql, host: 127.0.0.1, port: %ALIAS% }
  replications:`;
const PAIRS = 19;
/**
 * HEAD followed by `pairs`; shop-dr/pg-alias listens on its own port unless `aliasOf`
 * names the sentinel of another server (1: shop/pg-main, 8: shop-dr/pg).
 */
function withPairs(pairs: string, aliasOf = 10): string {
  const body = dedent(pairs).split('\n').map((l) => `    ${l}`).join('\n');
  return `${HEAD.replace('%ALIAS%', `%P${aliasOf}%`)}\n${body}`;
}

interface Case {
  name: string;
  yaml: string;
  line: number;
  key: string;
  /** Every fragment must be in the message: what is wrong and what would be valid. */
  message: Array<string | RegExp>;
  env?: NodeJS.ProcessEnv;
}

const SERVER_KEYS = 'valid keys here: engine, host, port, user, password, ssh, data_dir, service, replica_set';
const PAIR_KEYS = 'valid keys here: master, slave, primary, replica, name, state, resync, max_lag, resync_after, catchup_timeout, replication';
const PORT_HINT = 'expected a port number (1-65535)';
const DURATION_HINT = 'expected a duration such as 30s, 5m or 1h';
const NAME_HINT = 'expected [a-z0-9][a-z0-9-]*';
const REF_HINT = 'expected <application>/<server>';

const CASES: Case[] = [
  {
    name: 'YAML syntax error (a key indented out of its block)',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              engine: postgresql
             host: 127.0.0.1
    `,
    line: 7,
    key: '(yaml)',
    message: ['must start at the same column'],
  },
  {
    name: 'duplicate key',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              engine: postgresql
              host: 127.0.0.1
              host: 127.0.0.2
              port: %P1%
    `,
    line: 8,
    key: 'applications.shop.servers.pg-main.host',
    message: [/unique|duplicate/i],
  },
  {
    name: 'unknown top-level key',
    yaml: `
      version: 1
      aplications: {}
      applications:
        shop:
          servers:
            pg-main: { engine: postgresql, host: 127.0.0.1, port: %P1% }
    `,
    line: 2,
    key: 'aplications',
    message: ['unknown key "aplications"', 'valid keys here: version, defaults, applications, replications, prune'],
  },
  {
    name: 'unknown server key with a typo',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              engine: postgresql
              host: 127.0.0.1
              prot: %P1%
    `,
    line: 8,
    key: 'applications.shop.servers.pg-main.prot',
    message: ['unknown key "prot"', 'did you mean "port"?', SERVER_KEYS],
  },
  {
    name: 'unknown pair key',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-replica
        lag_limit: 5m
    `),
    line: PAIRS + 3,
    key: 'replications[0].lag_limit',
    message: ['unknown key "lag_limit"', PAIR_KEYS],
  },
  {
    name: 'wrong engine value',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              engine: postgres
              host: 127.0.0.1
              port: %P1%
    `,
    line: 6,
    key: 'applications.shop.servers.pg-main.engine',
    message: ['"postgres"', 'expected one of: postgresql, mysql, redis, mongodb'],
  },
  ...(['0', '70000', 'abc'] as const).map((port): Case => ({
    name: `bad port ${port}`,
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              engine: postgresql
              host: 127.0.0.1
              port: ${port}
    `,
    line: 8,
    key: 'applications.shop.servers.pg-main.port',
    message: [PORT_HINT],
  })),
  {
    name: 'bad duration for max_lag',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-replica
        max_lag: 5 minutes
    `),
    line: PAIRS + 3,
    key: 'replications[0].max_lag',
    message: [DURATION_HINT],
  },
  {
    name: 'bad duration for resync_after',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-replica
        resync_after: two minutes
    `),
    line: PAIRS + 3,
    key: 'replications[0].resync_after',
    message: [DURATION_HINT],
  },
  {
    name: 'resync_after misspelt: the closest key is suggested',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-replica
        resync_afer: 5m
    `),
    line: PAIRS + 3,
    key: 'replications[0].resync_afer',
    message: ['unknown key "resync_afer"', 'did you mean "resync_after"?', PAIR_KEYS],
  },
  {
    name: 'bad duration for catchup_timeout',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-replica
        catchup_timeout: 10 min
    `),
    line: PAIRS + 3,
    key: 'replications[0].catchup_timeout',
    message: [DURATION_HINT],
  },
  {
    name: 'missing version',
    yaml: `
      applications:
        shop:
          servers:
            pg-main: { engine: postgresql, host: 127.0.0.1, port: %P1% }
    `,
    line: 1,
    key: 'version',
    message: [/missing/, '1'],
  },
  {
    name: 'version: 2',
    yaml: `
      version: 2
      applications:
        shop:
          servers:
            pg-main: { engine: postgresql, host: 127.0.0.1, port: %P1% }
    `,
    line: 1,
    key: 'version',
    message: ['2', /expected .*1/],
  },
  {
    name: 'missing applications',
    yaml: `
      version: 1
      replications: []
    `,
    line: 1,
    key: 'applications',
    message: ['missing required key "applications"'],
  },
  {
    name: 'missing engine',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              host: 127.0.0.1
              port: %P1%
    `,
    line: 6,
    key: 'applications.shop.servers.pg-main.engine',
    message: [/missing/, 'postgresql, mysql, redis, mongodb'],
  },
  {
    name: 'missing host',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              engine: postgresql
              port: %P1%
    `,
    line: 6,
    key: 'applications.shop.servers.pg-main.host',
    message: ['missing required key "host"'],
  },
  {
    name: 'invalid application name (uppercase)',
    yaml: `
      version: 1
      applications:
        Shop:
          servers:
            pg-main: { engine: postgresql, host: 127.0.0.1, port: %P1% }
    `,
    line: 3,
    key: 'applications.Shop',
    message: ['"Shop"', NAME_HINT],
  },
  {
    name: 'invalid server name',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg_main: { engine: postgresql, host: 127.0.0.1, port: %P1% }
    `,
    line: 5,
    key: 'applications.shop.servers.pg_main',
    message: ['"pg_main"', NAME_HINT],
  },
  {
    name: 'reference to an unknown server',
    yaml: withPairs(`
      - master: shop/pg-mian
        slave: shop/pg-replica
    `),
    line: PAIRS + 1,
    key: 'replications[0].master',
    message: ['unknown server "shop/pg-mian"', 'known servers: shop/pg-main'],
  },
  {
    name: 'reference without a slash',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: pg-replica
    `),
    line: PAIRS + 2,
    key: 'replications[0].slave',
    message: ['"pg-replica"', REF_HINT],
  },
  {
    name: 'master and primary both given',
    yaml: withPairs(`
      - master: shop/pg-main
        primary: shop/pg-main
        slave: shop/pg-replica
    `),
    line: PAIRS + 2,
    key: 'replications[0].primary',
    message: ['master or primary', 'not both'],
  },
  {
    name: 'missing slave',
    yaml: withPairs(`
      - master: shop/pg-main
        state: enabled
    `),
    line: PAIRS + 1,
    key: 'replications[0].slave',
    message: ['missing slave (or replica)', REF_HINT],
  },
  {
    name: 'engine mismatch between master and slave',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/cache
    `),
    line: PAIRS + 2,
    key: 'replications[0].slave',
    message: ['engine mismatch', 'postgresql', 'redis'],
  },
  {
    name: 'self-replication (same reference)',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-main
    `),
    line: PAIRS + 2,
    key: 'replications[0].slave',
    message: ['cannot replicate from itself'],
  },
  {
    name: 'self-replication through two names for the same host:port',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop-dr/pg-alias
    `, 1),
    line: PAIRS + 2,
    key: 'replications[0].slave',
    message: ['same server', 'cannot be its own slave'],
  },
  {
    name: 'a slave with two masters',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop-dr/pg
      - master: shop/pg-replica
        slave: shop-dr/pg
    `),
    line: PAIRS + 4,
    key: 'replications[1].slave',
    message: ['already has a master', 'exactly one master'],
  },
  {
    name: 'a slave with two masters under two names for its host:port',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop-dr/pg
      - master: shop/pg-replica
        slave: shop-dr/pg-alias
    `, 8),
    line: PAIRS + 4,
    key: 'replications[1].slave',
    message: ['already has a master'],
  },
  {
    name: 'a replication cycle (A -> B, B -> A)',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-replica
      - master: shop/pg-replica
        slave: shop/pg-main
    `),
    line: PAIRS + 1,
    key: 'replications[0]',
    message: ['replication cycle', 'shop/pg-main', 'shop/pg-replica'],
  },
  {
    name: 'a replication cycle through two names for the same host:port',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-replica
      - master: shop/pg-replica
        slave: shop-dr/pg-alias
    `, 1),
    line: PAIRS + 1,
    key: 'replications[0]',
    message: ['replication cycle'],
  },
  {
    name: 'cross-application mongodb pair',
    yaml: withPairs(`
      - master: shop/mongo-a
        slave: shop-dr/mongo
    `),
    line: PAIRS + 2,
    key: 'replications[0].slave',
    message: ['mongodb pairs must stay inside one application'],
  },
  {
    name: 'cascading mongodb',
    yaml: withPairs(`
      - master: shop/mongo-a
        slave: shop/mongo-b
      - master: shop/mongo-b
        slave: shop/mongo-c
    `),
    line: PAIRS + 3,
    key: 'replications[1].master',
    message: ['cascading is not supported for mongodb'],
  },
  {
    name: '${VAR} not set',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              engine: postgresql
              host: 127.0.0.1
              port: %P1%
              password: "\${SHOP_PG_PASSWORD_UNSET}"
    `,
    line: 9,
    key: 'applications.shop.servers.pg-main.password',
    message: ['SHOP_PG_PASSWORD_UNSET', 'is not set'],
  },
  {
    name: 'ssh without known_hosts or host_key (on the server)',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              engine: postgresql
              host: 127.0.0.1
              port: %P1%
              ssh: { host: 127.0.0.1, port: %P2%, user: deploy }
    `,
    line: 9,
    key: 'applications.shop.servers.pg-main.ssh',
    message: ['known_hosts or host_key'],
  },
  {
    name: 'ssh without known_hosts or host_key (in defaults)',
    yaml: `
      version: 1
      defaults:
        ssh: { port: %P2%, user: deploy }
      applications:
        shop:
          servers:
            pg-main: { engine: postgresql, host: 127.0.0.1, port: %P1% }
    `,
    line: 3,
    key: 'defaults.ssh',
    message: ['known_hosts or host_key'],
  },
  {
    name: 'replica_set on a non-mongodb server',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main:
              engine: postgresql
              host: 127.0.0.1
              port: %P1%
              replica_set: rs0
    `,
    line: 9,
    key: 'applications.shop.servers.pg-main.replica_set',
    message: ['mongodb only'],
  },
  {
    name: 'enabled postgresql pair without a replication user and password',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main: { engine: postgresql, host: 127.0.0.1, port: %P1% }
            pg-replica: { engine: postgresql, host: 127.0.0.1, port: %P2% }
      replications:
        - master: shop/pg-main
          slave: shop/pg-replica
    `,
    line: 8,
    key: 'replications[0]',
    message: ['replication.user and replication.password'],
  },
  {
    name: 'prune: "yes" (not a boolean)',
    yaml: `
      version: 1
      applications:
        shop:
          servers:
            pg-main: { engine: postgresql, host: 127.0.0.1, port: %P1% }
      prune: "yes"
    `,
    line: 6,
    key: 'prune',
    message: ['expected boolean', '"yes"'],
  },
  {
    name: 'state: on',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-replica
        state: on
    `),
    line: PAIRS + 3,
    key: 'replications[0].state',
    message: ['"on"', 'expected one of: enabled, disabled'],
  },
  {
    name: 'an invalid value substituted from ${VAR} is reported without showing it',
    yaml: withPairs(`
      - master: shop/pg-main
        slave: shop/pg-replica
        state: \${PAIR_STATE}
    `),
    line: PAIRS + 3,
    key: 'replications[0].state',
    message: ['expected one of: enabled, disabled'],
  },
];

describe('malformed replication.yml: dbrepl plan reports file:line:column, key and a hint, and touches nothing', () => {
  test('there are at least 24 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(24);
  });

  test.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const file = write(c.yaml);
    const result = await run(['plan', '-c', file], { ...baseEnv(), ...c.env });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const issues = issuesIn(result.stderr, file);
    // Every line of stderr is one located issue: no stack trace, no unlocated error.
    expect(result.stderr.trimEnd().split('\n').length).toBe(issues.length);
    const found = issues.find((i) => i.key === c.key);
    if (!found) throw new Error(`no issue for key ${c.key}; stderr:\n${result.stderr}`);
    expect({ key: found.key, line: found.line }).toEqual({ key: c.key, line: c.line });
    const lineText = fs.readFileSync(file, 'utf8').split('\n')[found.line - 1] ?? '';
    expect(found.column).toBeGreaterThanOrEqual(1);
    expect(found.column).toBeLessThanOrEqual(lineText.length + 1);
    for (const fragment of c.message) {
      if (typeof fragment === 'string') expect(found.message).toContain(fragment);
      else expect(found.message).toMatch(fragment);
    }
  });

  test('a problem in defaults.ssh is reported once, not once per server that inherits it', async () => {
    const file = write(`
      version: 1
      defaults:
        ssh: { port: %P2%, user: deploy }
      applications:
        shop:
          servers:
            pg-main: { engine: postgresql, host: 127.0.0.1, port: %P1% }
            pg-replica: { engine: postgresql, host: 127.0.0.1, port: %P3% }
            pg-third: { engine: postgresql, host: 127.0.0.1, port: %P4% }
    `);
    const r = await run(['validate', '-c', file], baseEnv());
    expect(r.code).toBe(1);
    expect(issuesIn(r.stderr, file).filter((i) => i.key === 'defaults.ssh')).toHaveLength(1);
  });

  test('all problems of a file are reported at once, in line order', async () => {
    const file = write(withPairs(`
      - master: shop/pg-main
        slave: shop/nope
      - master: shop/mongo-a
        slave: shop-dr/mongo
    `));
    const r = await run(['validate', '-c', file], baseEnv());
    expect(r.code).toBe(1);
    expect(issuesIn(r.stderr, file).map((i) => [i.line, i.key])).toEqual([
      [PAIRS + 2, 'replications[0].slave'],
      [PAIRS + 4, 'replications[1].slave'],
    ]);
  });

  test('a missing file is an error that says how to pass one', async () => {
    const r = await run(['validate', '-c', path.join(dir, 'nope.yml')], baseEnv());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.yml');
    expect(r.stderr).toMatch(/not found/);
  });
});

const VALID = `
  version: 1
  defaults:
    replication: { user: replicator, password: "\${REPLICATION_PASSWORD}" }
  applications:
    shop:
      environment: production
      servers:
        pg-main:
          engine: postgresql
          host: 127.0.0.1
          port: %P1%
          user: postgres
          password: "\${SHOP_PG_PASSWORD}"
          ssh: { host: 127.0.0.1, port: %P4%, user: deploy, known_hosts: "\${SSH_KNOWN_HOSTS}" }
        pg-replica: { engine: postgresql, host: 127.0.0.1, port: %P2%, password: "\${SHOP_PG_PASSWORD}" }
        cache: { engine: redis, host: 127.0.0.1, port: %P5% }
        cache-replica: { engine: redis, host: 127.0.0.1, port: %P6% }
        cache-cascade: { engine: redis, host: 127.0.0.1, port: %P7% }
    shop-dr:
      environment: dr
      servers:
        pg: { engine: postgresql, host: 127.0.0.1, port: %P3%, password: "\${SHOP_PG_PASSWORD}" }
  replications:
    - primary: shop/pg-main
      replica: shop/pg-replica
    - master: shop/pg-main
      slave: shop-dr/pg
      name: dr-copy
      resync: manual
      max_lag: 5m
      catchup_timeout: 10m
    - primary: shop/cache
      replica: shop/cache-replica
    - master: shop/cache-replica
      slave: shop/cache-cascade
  prune: false
`;

describe('a valid file: validate and env read the file alone', () => {
  test('validate accepts primary/replica as synonyms and cascading redis, connecting to nothing', async () => {
    const file = write(VALID);
    const r = await run(['validate', '-c', file], baseEnv());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid: 2 application\(s\), 6 server\(s\), 4 pair\(s\)/);
  });

  test('env --format json prints the declared topology\'s variables, connecting to nothing', async () => {
    const file = write(VALID);
    const r = await run(['env', '-c', file, '--format', 'json'], baseEnv());
    expect(r.code).toBe(0);
    const [p1, p2, p3, , p5, p6, p7] = ports;
    expect(r.json()).toEqual({
      shop: {
        POSTGRESQL_ADDRESS: '127.0.0.1',
        POSTGRESQL_PORT: String(p1),
        // by reference: shop-dr/pg sorts before shop/pg-replica
        POSTGRESQL_SLAVE_ADDRESSES: `127.0.0.1:${p3},127.0.0.1:${p2}`,
        REDIS_ADDRESS: '127.0.0.1',
        REDIS_PORT: String(p5),
        REDIS_SLAVE_ADDRESSES: `127.0.0.1:${p7},127.0.0.1:${p6}`,
      },
      'shop-dr': { POSTGRESQL_ADDRESS: '127.0.0.1', POSTGRESQL_PORT: String(p3), POSTGRESQL_SLAVE_ADDRESSES: '' },
    });
  });

  test('env (dotenv) prints one block per application, connecting to nothing', async () => {
    const file = write(VALID);
    const r = await run(['env', '-c', file], baseEnv());
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('# shop');
    expect(lines).toContain(`POSTGRESQL_PORT=${ports[0]}`);
    expect(lines).toContain('# shop-dr');
    expect(lines.indexOf('# shop-dr')).toBeGreaterThan(lines.indexOf(`POSTGRESQL_PORT=${ports[0]}`));
  });

  test('validate of a valid file whose ${VAR} is unset: a warning naming the variable where it is used, exit 0, no other secret', async () => {
    const file = write(VALID);
    const env = baseEnv();
    delete env.SSH_KNOWN_HOSTS;
    const r = await run(['validate', '-c', file], env);
    expect(r.code).toBe(0);
    expect(issuesIn(r.stderr, file, 'warning')).toEqual([expect.objectContaining({ key: 'applications.shop.servers.pg-main.ssh.known_hosts', message: expect.stringContaining('SSH_KNOWN_HOSTS is not set') })]);
    expect(r.stdout).toContain('1 variable(s) not set');
    const j = await run(['validate', '-c', file, '--json'], env);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ valid: true, pairs: 4, warnings: [expect.stringContaining('SSH_KNOWN_HOSTS')] });
  });

  test('resync_after from an unset ${VAR}: validate warns (a stand-in parses); set, it is valid', async () => {
    const file = write(VALID.replace(/max_lag: 5m/, 'max_lag: 5m\n      resync_after: "${RESYNC_AFTER}"'));
    expect(fs.readFileSync(file, 'utf8')).toMatch(/\n( +)max_lag: 5m\n\1resync_after: "\$\{RESYNC_AFTER\}"/);
    const v = await run(['validate', '-c', file], baseEnv());
    expect(v.code).toBe(0);
    expect(issuesIn(v.stderr, file, 'warning')).toEqual([expect.objectContaining({ key: 'replications[1].resync_after', message: expect.stringContaining('RESYNC_AFTER is not set') })]);
    const ok = await run(['validate', '-c', file, '--json'], { ...baseEnv(), RESYNC_AFTER: '30s' });
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, warnings: [] });
  });

  test('validate and env need no password exported; env refuses an unset value it is computed from', async () => {
    const file = write(VALID);
    const bare: NodeJS.ProcessEnv = { PATH: process.env.PATH };
    const v = await run(['validate', '-c', file], bare);
    expect(v.code).toBe(0);
    expect(issuesIn(v.stderr, file, 'warning').length).toBeGreaterThan(1);
    const e = await run(['env', '-c', file, '--format', 'json'], bare);
    expect(e.code).toBe(0);
    expect(Object.keys(JSON.parse(e.stdout))).toEqual(['shop', 'shop-dr']);
    // A host from a variable: env cannot print the address without it.
    const hosted = write(VALID.replace(/host: 127\.0\.0\.1/, 'host: ${PG_MAIN_HOST}'));
    const h = await run(['env', '-c', hosted], bare);
    expect(h.code).toBe(1);
    expect(issuesIn(h.stderr, hosted)).toEqual([expect.objectContaining({ key: expect.stringMatching(/^applications\.shop\.servers\.[a-z-]+\.host$/), message: expect.stringContaining('PG_MAIN_HOST is not set') })]);
    // plan needs every value: an unset one is an error there, before any connection.
    const p = await run(['plan', '-c', file], bare);
    expect(p.code).toBe(1);
    expect(issuesIn(p.stderr, file).length).toBeGreaterThan(0);
  });
});

test('no server was touched by any of the runs above', async () => {
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(connections).toBe(0);
});
