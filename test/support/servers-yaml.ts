import type { MariaServer } from './mariadb';
import type { PgCluster } from './postgres';
import type { RedisServer } from './redis';

/** A test server as replication.yml declares it, its password from `${passwordVar}` (kept out of the file). */
export const pgServer = (c: PgCluster, passwordVar: string): Record<string, unknown> => ({ engine: 'postgresql', host: c.host, port: c.port, password: `\${${passwordVar}}`, service: c.service });

export const mariaServer = (s: MariaServer, passwordVar: string): Record<string, unknown> => ({
  engine: 'mysql',
  host: s.host,
  port: s.port,
  user: 'admin',
  password: `\${${passwordVar}}`,
  service: s.service,
  options_file: s.dbreplOptionsFile,
});

export const redisServer = (s: RedisServer, passwordVar: string): Record<string, unknown> => ({ engine: 'redis', host: s.host, port: s.port, password: `\${${passwordVar}}`, service: s.service });
