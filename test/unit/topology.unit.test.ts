/** resolveTopology and selectPairs on parsed objects: defaults, merging, names, --only. */
import { selectPairs } from '../../src/topology';
import { issuesOf, topologyOf } from './helpers/build';

const LOGIN = { user: 'replicator', password: 'r-pass' };

describe('servers', () => {
  test('each engine gets its default port; a port in the file wins', () => {
    const t = topologyOf({
      version: 1,
      applications: {
        shop: {
          servers: {
            pg: { engine: 'postgresql', host: 'h1' },
            my: { engine: 'mysql', host: 'h2' },
            rd: { engine: 'redis', host: 'h3' },
            mg: { engine: 'mongodb', host: 'h4' },
            pg2: { engine: 'postgresql', host: 'h5', port: 6543 },
            rd2: { engine: 'redis', host: 'h6', port: '7000' },
          },
        },
      },
    });
    const ports = Object.fromEntries([...t.servers.values()].map((s) => [s.ref, s.port]));
    expect(ports).toEqual({
      'shop/pg': 5432,
      'shop/my': 3306,
      'shop/rd': 6379,
      'shop/mg': 27017,
      'shop/pg2': 6543,
      'shop/rd2': 7000,
    });
  });

  test('servers are keyed by application/server and keep their application, name and engine', () => {
    const t = topologyOf({
      version: 1,
      applications: {
        shop: { environment: 'production', servers: { 'pg-main': { engine: 'postgresql', host: '10.0.1.5' } } },
        'shop-dr': { servers: { pg: { engine: 'postgresql', host: '10.9.0.5', data_dir: '/srv/pg' } } },
      },
    });
    expect(t.servers.get('shop/pg-main')).toMatchObject({ app: 'shop', name: 'pg-main', engine: 'postgresql', host: '10.0.1.5' });
    expect(t.servers.get('shop-dr/pg')).toMatchObject({ app: 'shop-dr', name: 'pg', dataDir: '/srv/pg' });
    expect(t.applications.map((a) => [a.name, a.environment, a.servers.map((s) => s.ref)])).toEqual([
      ['shop', 'production', ['shop/pg-main']],
      ['shop-dr', undefined, ['shop-dr/pg']],
    ]);
  });

  test('mongodb replica_set defaults to rs0; a set name in the file wins', () => {
    const t = topologyOf({
      version: 1,
      applications: {
        shop: {
          servers: {
            a: { engine: 'mongodb', host: 'm1' },
            b: { engine: 'mongodb', host: 'm2', replica_set: 'shop-rs' },
          },
        },
      },
    });
    expect(t.servers.get('shop/a')!.replicaSet).toBe('rs0');
    expect(t.servers.get('shop/b')!.replicaSet).toBe('shop-rs');
  });

  test('defaults.ssh is merged under each server\'s ssh, server keys winning', () => {
    const t = topologyOf({
      version: 1,
      defaults: { ssh: { user: 'deploy', port: 2222, known_hosts: 'KH', sudo: true } },
      applications: {
        shop: {
          servers: {
            plain: { engine: 'postgresql', host: 'h1' },
            own: { engine: 'postgresql', host: 'h2', ssh: { host: 'jump-h2', port: 22, user: 'ops' } },
          },
        },
      },
    });
    expect(t.servers.get('shop/plain')!.ssh).toEqual({ user: 'deploy', port: 2222, known_hosts: 'KH', sudo: true });
    expect(t.servers.get('shop/own')!.ssh).toEqual({ host: 'jump-h2', user: 'ops', port: 22, known_hosts: 'KH', sudo: true });
  });

  test('a server without ssh, with no defaults.ssh, runs host commands on the runner (no ssh settings)', () => {
    const t = topologyOf({ version: 1, applications: { shop: { servers: { a: { engine: 'redis', host: 'h' } } } } });
    expect(t.servers.get('shop/a')!.ssh).toBeUndefined();
  });

  test('a server\'s host_key satisfies the host-key rule even when defaults.ssh has neither', () => {
    const t = topologyOf({
      version: 1,
      defaults: { ssh: { user: 'deploy' } },
      applications: { shop: { servers: { a: { engine: 'redis', host: 'h', ssh: { host_key: 'ssh-ed25519 AAAA' } } } } },
    });
    expect(t.servers.get('shop/a')!.ssh).toEqual({ user: 'deploy', host_key: 'ssh-ed25519 AAAA' });
  });
});

describe('pairs', () => {
  const apps = {
    shop: {
      servers: {
        'pg-main': { engine: 'postgresql', host: '10.0.1.5' },
        'pg-replica': { engine: 'postgresql', host: '10.0.1.6' },
        cache: { engine: 'redis', host: '10.0.1.7' },
        'cache-replica': { engine: 'redis', host: '10.0.1.8' },
      },
    },
    'shop-dr': { servers: { pg: { engine: 'postgresql', host: '10.9.0.5' } } },
  };

  test('a pair without a name is named after its slave reference; a given name is kept', () => {
    const t = topologyOf({
      version: 1,
      defaults: { replication: LOGIN },
      applications: apps,
      replications: [
        { master: 'shop/pg-main', slave: 'shop/pg-replica' },
        { master: 'shop/pg-main', slave: 'shop-dr/pg', name: 'dr-copy' },
      ],
    });
    expect(t.pairs.map((p) => p.name)).toEqual(['shop/pg-replica', 'dr-copy']);
  });

  test('pair defaults: enabled, resync auto, max_lag 5m, resync_after 2m, catchup_timeout 10m', () => {
    const t = topologyOf({
      version: 1,
      applications: apps,
      replications: [{ master: 'shop/cache', slave: 'shop/cache-replica' }],
    });
    expect(t.pairs[0]).toMatchObject({ desired: 'enabled', resync: 'auto', maxLagSeconds: 300, resyncAfterSeconds: 120, catchupTimeoutSeconds: 600, engine: 'redis', index: 0 });
  });

  test.each([
    ['30s', 30],
    ['5m', 300],
    ['1h', 3600],
    ['250ms', 0.25],
    [90, 90],
    ['1.5m', 90],
  ] as const)('duration %p is %p seconds', (value, seconds) => {
    const t = topologyOf({
      version: 1,
      applications: apps,
      replications: [{ master: 'shop/cache', slave: 'shop/cache-replica', max_lag: value, resync_after: value, catchup_timeout: value }],
    });
    expect(t.pairs[0]!.maxLagSeconds).toBe(seconds);
    expect(t.pairs[0]!.resyncAfterSeconds).toBe(seconds);
    expect(t.pairs[0]!.catchupTimeoutSeconds).toBe(seconds);
  });

  test('primary/replica are synonyms of master/slave', () => {
    const t = topologyOf({
      version: 1,
      defaults: { replication: LOGIN },
      applications: apps,
      replications: [{ primary: 'shop/pg-main', replica: 'shop/pg-replica', state: 'disabled', resync: 'manual' }],
    });
    expect(t.pairs[0]).toMatchObject({ name: 'shop/pg-replica', desired: 'disabled', resync: 'manual' });
    expect(t.pairs[0]!.master.ref).toBe('shop/pg-main');
    expect(t.pairs[0]!.slave.ref).toBe('shop/pg-replica');
  });

  test('defaults.replication is merged under a pair\'s replication, pair keys winning', () => {
    const t = topologyOf({
      version: 1,
      defaults: { replication: { user: 'replicator', password: 'default-pass' } },
      applications: apps,
      replications: [
        { master: 'shop/pg-main', slave: 'shop/pg-replica' },
        { master: 'shop/pg-main', slave: 'shop-dr/pg', replication: { password: 'dr-pass' } },
      ],
    });
    expect(t.pairs[0]!.replication).toEqual({ user: 'replicator', password: 'default-pass' });
    expect(t.pairs[1]!.replication).toEqual({ user: 'replicator', password: 'dr-pass' });
  });

  test('a pair\'s own replication login is enough without defaults', () => {
    const t = topologyOf({
      version: 1,
      applications: apps,
      replications: [{ master: 'shop/pg-main', slave: 'shop/pg-replica', replication: { user: 'rep', password: 'p' } }],
    });
    expect(t.pairs[0]!.replication).toEqual({ user: 'rep', password: 'p' });
  });

  test('a disabled postgresql pair needs no replication login', () => {
    const t = topologyOf({
      version: 1,
      applications: apps,
      replications: [{ master: 'shop/pg-main', slave: 'shop/pg-replica', state: 'disabled' }],
    });
    expect(t.pairs[0]!.desired).toBe('disabled');
  });

  test('cascading postgresql across applications is allowed', () => {
    const t = topologyOf({
      version: 1,
      defaults: { replication: LOGIN },
      applications: apps,
      replications: [
        { master: 'shop/pg-main', slave: 'shop/pg-replica' },
        { master: 'shop/pg-replica', slave: 'shop-dr/pg' },
      ],
    });
    expect(t.pairs.map((p) => `${p.master.ref}->${p.slave.ref}`)).toEqual(['shop/pg-main->shop/pg-replica', 'shop/pg-replica->shop-dr/pg']);
  });

  test('a three-server cycle is reported once, naming every server on it', () => {
    const issues = issuesOf({
      version: 1,
      defaults: { replication: LOGIN },
      applications: apps,
      replications: [
        { master: 'shop/pg-main', slave: 'shop/pg-replica' },
        { master: 'shop/pg-replica', slave: 'shop-dr/pg' },
        { master: 'shop-dr/pg', slave: 'shop/pg-main' },
      ],
    });
    const cycles = issues.filter((i) => /cycle/.test(i.message));
    expect(cycles).toHaveLength(1);
    for (const ref of ['shop/pg-main', 'shop/pg-replica', 'shop-dr/pg']) expect(cycles[0]!.message).toContain(ref);
  });

  test('two pairs with the same name are rejected at the second name', () => {
    const issues = issuesOf({
      version: 1,
      applications: apps,
      replications: [
        { master: 'shop/cache', slave: 'shop/cache-replica', name: 'x' },
        { master: 'shop/pg-main', slave: 'shop/pg-replica', name: 'x', state: 'disabled' },
      ],
    });
    expect(issues).toEqual([{ path: ['replications', 1, 'name'], message: expect.stringContaining('"x" is already used by replications[0]') }]);
  });

  test('data_dir on a redis server is rejected', () => {
    const issues = issuesOf({ version: 1, applications: { shop: { servers: { c: { engine: 'redis', host: 'h', data_dir: '/d' } } } } });
    expect(issues.map((i) => i.path)).toEqual([['applications', 'shop', 'servers', 'c', 'data_dir']]);
  });
});

describe('selectPairs (--only)', () => {
  const t = topologyOf({
    version: 1,
    defaults: { replication: LOGIN },
    applications: {
      shop: {
        servers: {
          'pg-main': { engine: 'postgresql', host: '10.0.1.5' },
          'pg-replica': { engine: 'postgresql', host: '10.0.1.6' },
        },
      },
      'shop-dr': { servers: { pg: { engine: 'postgresql', host: '10.9.0.5' } } },
      blog: {
        servers: {
          cache: { engine: 'redis', host: '10.2.0.1' },
          'cache-replica': { engine: 'redis', host: '10.2.0.2' },
        },
      },
    },
    replications: [
      { master: 'shop/pg-main', slave: 'shop/pg-replica' },
      { master: 'shop/pg-main', slave: 'shop-dr/pg', name: 'dr-copy' },
      { master: 'blog/cache', slave: 'blog/cache-replica' },
    ],
  });
  const names = (only: string[] | undefined): { pairs: string[]; unknown: string[] } => {
    const r = selectPairs(t, only);
    return { pairs: r.pairs.map((p) => p.name), unknown: r.unknown };
  };

  test('without --only (or with an empty list) every pair is selected', () => {
    expect(names(undefined)).toEqual({ pairs: ['shop/pg-replica', 'dr-copy', 'blog/cache-replica'], unknown: [] });
    expect(names([])).toEqual({ pairs: ['shop/pg-replica', 'dr-copy', 'blog/cache-replica'], unknown: [] });
  });

  test('by pair name (a given name, or the default slave reference)', () => {
    expect(names(['dr-copy'])).toEqual({ pairs: ['dr-copy'], unknown: [] });
    expect(names(['blog/cache-replica'])).toEqual({ pairs: ['blog/cache-replica'], unknown: [] });
  });

  test('by application name: every pair with a side in that application', () => {
    expect(names(['blog'])).toEqual({ pairs: ['blog/cache-replica'], unknown: [] });
    expect(names(['shop'])).toEqual({ pairs: ['shop/pg-replica', 'dr-copy'], unknown: [] });
    expect(names(['shop-dr'])).toEqual({ pairs: ['dr-copy'], unknown: [] });
  });

  test('pair and application names mix; the file order is kept', () => {
    expect(names(['blog', 'shop/pg-replica'])).toEqual({ pairs: ['shop/pg-replica', 'blog/cache-replica'], unknown: [] });
  });

  test('unknown names are returned for the caller to reject, known ones still select', () => {
    expect(names(['shop/pg', 'dr-copy', 'nope'])).toEqual({ pairs: ['dr-copy'], unknown: ['shop/pg', 'nope'] });
  });

  test('a server reference is not a pair name unless it is a slave of a pair', () => {
    expect(names(['shop/pg-main']).unknown).toEqual(['shop/pg-main']);
  });
});

