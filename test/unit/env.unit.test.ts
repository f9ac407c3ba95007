/** SPEC section 5: the environment variables of each application, and the dotenv format. */
import { computeEnv, desiredEnv, toDotenv } from '../../src/env/compute';
import { topologyOf } from './helpers/build';

const LOGIN = { user: 'replicator', password: 'r-pass' };

describe('postgresql within and across applications', () => {
  const doc = (overrides: { drState?: 'enabled' | 'disabled'; replicaState?: 'enabled' | 'disabled' } = {}) => ({
    version: 1,
    defaults: { replication: LOGIN },
    applications: {
      shop: {
        servers: {
          // Declared before its master on purpose: the master is found by role, not by order.
          'pg-replica': { engine: 'postgresql', host: '10.0.1.6' },
          'pg-main': { engine: 'postgresql', host: '10.0.1.5' },
        },
      },
      'shop-dr': {
        servers: {
          pg: { engine: 'postgresql', host: '10.9.0.5', port: 5433 },
          'pg-cascade': { engine: 'postgresql', host: '10.9.0.6' },
        },
      },
      analytics: { servers: { pg: { engine: 'postgresql', host: '10.7.0.5', port: 6432 } } },
      blog: { servers: { pg: { engine: 'postgresql', host: '10.3.0.5' } } },
    },
    replications: [
      { master: 'shop/pg-main', slave: 'shop/pg-replica', state: overrides.replicaState ?? 'enabled' },
      { master: 'shop/pg-main', slave: 'shop-dr/pg', state: overrides.drState ?? 'enabled' },
      // cascaded: a slave of a slave, in its own application
      { master: 'shop-dr/pg', slave: 'shop-dr/pg-cascade' },
      // cascaded from a same-application slave, into a third application
      { master: 'shop/pg-replica', slave: 'analytics/pg' },
    ],
  });

  test('the application\'s master and every slave below it, cascaded ones included, in reference order', () => {
    const env = desiredEnv(topologyOf(doc()));
    expect(env.shop).toEqual({
      POSTGRESQL_ADDRESS: '10.0.1.5',
      POSTGRESQL_PORT: '5432',
      // analytics/pg < shop-dr/pg < shop-dr/pg-cascade < shop/pg-replica ('-' sorts before '/')
      POSTGRESQL_SLAVE_ADDRESSES: '10.7.0.5:6432,10.9.0.5:5433,10.9.0.6,10.0.1.6',
    });
  });

  test('a cross-application slave is the master of its own application', () => {
    const env = desiredEnv(topologyOf(doc()));
    expect(env['shop-dr']).toEqual({
      POSTGRESQL_ADDRESS: '10.9.0.5',
      POSTGRESQL_PORT: '5433',
      POSTGRESQL_SLAVE_ADDRESSES: '10.9.0.6',
    });
    expect(env.analytics).toEqual({ POSTGRESQL_ADDRESS: '10.7.0.5', POSTGRESQL_PORT: '6432', POSTGRESQL_SLAVE_ADDRESSES: '' });
  });

  test('an application without slaves gets an empty SLAVE_ADDRESSES', () => {
    expect(desiredEnv(topologyOf(doc())).blog).toEqual({ POSTGRESQL_ADDRESS: '10.3.0.5', POSTGRESQL_PORT: '5432', POSTGRESQL_SLAVE_ADDRESSES: '' });
  });

  test('a disabled pair takes its slave, and everything cascaded below it, out of the list', () => {
    const env = desiredEnv(topologyOf(doc({ drState: 'disabled' })));
    expect(env.shop!.POSTGRESQL_SLAVE_ADDRESSES).toBe('10.7.0.5:6432,10.0.1.6');
    // the disabled slave stays the master of its own application, with its own slave
    expect(env['shop-dr']).toEqual({ POSTGRESQL_ADDRESS: '10.9.0.5', POSTGRESQL_PORT: '5433', POSTGRESQL_SLAVE_ADDRESSES: '10.9.0.6' });
  });

  test('disabling a same-application pair does not make its former slave the application\'s master', () => {
    // shop/pg-replica is declared before shop/pg-main; once the pair is disabled both are
    // standalone, but the file still names pg-main as the master: the application's writes
    // must not move to the former replica because of declaration order.
    const env = desiredEnv(topologyOf(doc({ replicaState: 'disabled' })));
    expect(env.shop!.POSTGRESQL_ADDRESS).toBe('10.0.1.5');
    expect(env.shop!.POSTGRESQL_SLAVE_ADDRESSES).toBe('10.9.0.5:5433,10.9.0.6');
  });

  test('computeEnv counts only the pairs the predicate says are in effect', () => {
    const t = topologyOf(doc());
    const env = computeEnv(t, (p) => p.slave.ref === 'shop/pg-replica');
    expect(env.shop!.POSTGRESQL_SLAVE_ADDRESSES).toBe('10.0.1.6');
    expect(env.shop!.POSTGRESQL_ADDRESS).toBe('10.0.1.5');
    const none = computeEnv(t, () => false);
    expect(none['shop-dr']!.POSTGRESQL_SLAVE_ADDRESSES).toBe('');
    expect(none.shop!.POSTGRESQL_SLAVE_ADDRESSES).toBe('');
  });

  test('every application gets an entry, in file order', () => {
    expect(Object.keys(desiredEnv(topologyOf(doc())))).toEqual(['shop', 'shop-dr', 'analytics', 'blog']);
  });
});

describe('engines side by side', () => {
  test('each engine of an application has its own variables, with that engine\'s default port', () => {
    const env = desiredEnv(
      topologyOf({
        version: 1,
        defaults: { replication: LOGIN },
        applications: {
          shop: {
            servers: {
              pg: { engine: 'postgresql', host: 'pg1' },
              my: { engine: 'mysql', host: 'my1' },
              'my-r': { engine: 'mysql', host: 'my2', port: 3307 },
              cache: { engine: 'redis', host: 'rd1', port: 6380 },
              'cache-r': { engine: 'redis', host: 'rd2', port: 6379 },
            },
          },
        },
        replications: [
          { master: 'shop/my', slave: 'shop/my-r' },
          { master: 'shop/cache', slave: 'shop/cache-r' },
        ],
      }),
    );
    expect(env.shop).toEqual({
      POSTGRESQL_ADDRESS: 'pg1',
      POSTGRESQL_PORT: '5432',
      POSTGRESQL_SLAVE_ADDRESSES: '',
      MYSQL_ADDRESS: 'my1',
      MYSQL_PORT: '3306',
      MYSQL_SLAVE_ADDRESSES: 'my2:3307',
      REDIS_ADDRESS: 'rd1',
      REDIS_PORT: '6380',
      REDIS_SLAVE_ADDRESSES: 'rd2',
    });
  });
});

describe('mongodb', () => {
  /** A multi-host connection string is not a WHATWG URL; split it by the MongoDB grammar. */
  const mongoUrl = (url: string): { hosts: string; params: URLSearchParams } => {
    const m = /^mongodb:\/\/([^/?]+)\/?\?(.*)$/.exec(url);
    if (!m) throw new Error(`not a mongodb:// URL with options: ${url}`);
    return { hosts: m[1]!, params: new URLSearchParams(m[2]) };
  };
  const topology = (replicaSet?: string) =>
    topologyOf({
      version: 1,
      applications: {
        shop: {
          servers: {
            'mongo-a': { engine: 'mongodb', host: 'm1', ...(replicaSet ? { replica_set: replicaSet } : {}) },
            'mongo-c': { engine: 'mongodb', host: 'm3' },
            'mongo-b': { engine: 'mongodb', host: 'm2', port: 27018 },
          },
        },
      },
      replications: [
        { master: 'shop/mongo-a', slave: 'shop/mongo-c' },
        { master: 'shop/mongo-a', slave: 'shop/mongo-b' },
      ],
    });

  test('address, port, slaves, every member and a URL with the replica set', () => {
    const vars = desiredEnv(topology()).shop!;
    expect(vars.MONGODB_ADDRESS).toBe('m1');
    expect(vars.MONGODB_PORT).toBe('27017');
    expect(vars.MONGODB_SLAVE_ADDRESSES).toBe('m2:27018,m3');
    expect(vars.MONGODB_ADDRESSES!.split(',').sort()).toEqual(['m1', 'm2:27018', 'm3']);
    const url = mongoUrl(vars.MONGODB_URL!);
    expect(url.hosts).toBe(vars.MONGODB_ADDRESSES);
    expect(url.params.get('replicaSet')).toBe('rs0');
  });

  test('the URL names the replica set of the file', () => {
    const vars = desiredEnv(topology('shop-rs')).shop!;
    expect(mongoUrl(vars.MONGODB_URL!).params.get('replicaSet')).toBe('shop-rs');
  });

  test('a member whose pair is disabled is no longer a member', () => {
    const t = topology();
    const vars = computeEnv(t, (p) => p.slave.ref !== 'shop/mongo-b').shop!;
    expect(vars.MONGODB_ADDRESSES!.split(',').sort()).toEqual(['m1', 'm3']);
    expect(vars.MONGODB_SLAVE_ADDRESSES).toBe('m3');
  });
});

describe('toDotenv', () => {
  test('VARIABLE=value lines under a "# <application>" comment, one application after another', () => {
    const text = toDotenv({
      shop: { POSTGRESQL_ADDRESS: '10.0.1.5', POSTGRESQL_PORT: '5432', POSTGRESQL_SLAVE_ADDRESSES: '10.0.1.6,10.9.0.5:5433' },
      'shop-dr': { POSTGRESQL_ADDRESS: '10.9.0.5', POSTGRESQL_SLAVE_ADDRESSES: '' },
    });
    const lines = text.split('\n').filter((l) => l !== '');
    expect(lines).toEqual([
      '# shop',
      'POSTGRESQL_ADDRESS=10.0.1.5',
      'POSTGRESQL_PORT=5432',
      'POSTGRESQL_SLAVE_ADDRESSES=10.0.1.6,10.9.0.5:5433',
      '# shop-dr',
      'POSTGRESQL_ADDRESS=10.9.0.5',
      'POSTGRESQL_SLAVE_ADDRESSES=',
    ]);
    expect(text.endsWith('\n')).toBe(true);
  });

  test('a MongoDB URL survives as one value (a dotenv reader gets it back whole)', () => {
    const url = 'mongodb://m1,m2:27018/?replicaSet=rs0';
    const text = toDotenv({ shop: { MONGODB_URL: url } });
    const line = text.split('\n').find((l) => l.startsWith('MONGODB_URL='))!;
    const raw = line.slice('MONGODB_URL='.length);
    const value = raw.startsWith('"') ? JSON.parse(raw) : raw;
    expect(value).toBe(url);
  });

  test('no applications, no output', () => {
    expect(toDotenv({})).toBe('');
  });
});
