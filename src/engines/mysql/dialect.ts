import { createHash } from 'node:crypto';

/**
 * Every difference between MySQL 8.0, MySQL 8.4 and MariaDB lives in this one table, keyed
 * by flavour and version: statement spellings (MASTER/SLAVE words removed in MySQL 8.4),
 * GTID positioning, how settings are persisted, and the client programs.
 */
export type Flavour = 'mariadb' | 'mysql';

export interface Version {
  flavour: Flavour;
  major: number;
  minor: number;
  patch: number;
  text: string;
}

export function parseVersion(text: string): Version {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) throw new Error(`cannot read a server version from "${text}"`);
  return { flavour: /mariadb/i.test(text) ? 'mariadb' : 'mysql', major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text };
}

/** a >= b by major.minor.patch */
export function atLeast(v: Version, major: number, minor = 0, patch = 0): boolean {
  return v.major !== major ? v.major > major : v.minor !== minor ? v.minor > minor : v.patch >= patch;
}

export interface SourceOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The replication channel over TLS: files on the slave's host; `verify` checks the master's name. */
  tls?: TlsPaths;
}

export interface TlsPaths {
  verify: boolean;
  ca?: string;
  cert?: string;
  key?: string;
}

/** The TLS part of CHANGE MASTER TO / CHANGE REPLICATION SOURCE TO, with the statement's own prefix. */
function tlsClause(prefix: 'MASTER' | 'SOURCE', t: TlsPaths | undefined): { sql: string; values: unknown[] } {
  if (!t) return { sql: '', values: [] };
  const parts = [`${prefix}_SSL = 1`];
  const values: unknown[] = [];
  for (const [k, v] of [['CA', t.ca], ['CERT', t.cert], ['KEY', t.key]] as const) {
    if (v) {
      parts.push(`${prefix}_SSL_${k} = ?`);
      values.push(v);
    }
  }
  parts.push(`${prefix}_SSL_VERIFY_SERVER_CERT = ${t.verify ? 1 : 0}`);
  return { sql: `, ${parts.join(', ')}`, values };
}

function changeStatement(head: string, prefix: 'MASTER' | 'SOURCE', positioning: string, o: SourceOptions): { sql: string; values: unknown[] } {
  const tls = tlsClause(prefix, o.tls);
  return {
    sql: `${head} ${prefix}_HOST = ?, ${prefix}_PORT = ?, ${prefix}_USER = ?, ${prefix}_PASSWORD = ?, ${positioning}, ${prefix}_CONNECT_RETRY = 5${tls.sql}`,
    values: [o.host, o.port, o.user, o.password, ...tls.values],
  };
}

export interface Dialect {
  version: Version;
  replicaStatus: string;
  binlogStatus: string;
  startReplica: string;
  stopReplica: string;
  resetReplicaAll: string;
  /** Clears the server's own binary logs and executed GTIDs (before a copy replaces its data). */
  resetBinlogs: string;
  /** Points the slave at the master, positioned by GTID; values are bound client-side. */
  changeSource(o: SourceOptions): { sql: string; values: unknown[] };
  /** SQL expression: every GTID the server has executed (the master's side of a catch-up). */
  executedGtids: string;
  /** Waits on the slave until it has executed `target`; the result column `r` is 0 when done. */
  waitForGtids: string;
  /** read_only only (super_read_only would block the copy itself); on=false lifts both. */
  readOnly(on: boolean): string[];
  /** After the copy: MySQL's super_read_only (also blocks SUPER accounts); null where none exists. */
  superReadOnly: string | null;
  /** Keeps an event copied from the master from running on the slave. */
  disableEventOnReplica: string;
  /** Whether settings must be written to an option file to survive a restart (no SET PERSIST). */
  needsOptionsFile: boolean;
  setServerId: string;
  dumpProgram: string;
  clientProgram: string;
  /** Online, consistent full dump carrying the GTID position. */
  dumpArgs: string[];
  /** Replication user statements (values bound client-side); `secret` is what stands for the password. */
  replicationUser(user: string, host: string, secret: string): Array<{ sql: string; values: unknown[] }>;
  /** [client] option-file lines that make the command-line programs use TLS. */
  clientTls(t: TlsPaths): string[];
}

const tlsFiles = (t: TlsPaths): string[] => [t.ca && `ssl-ca=${t.ca}`, t.cert && `ssl-cert=${t.cert}`, t.key && `ssl-key=${t.key}`].filter((x): x is string => !!x);

interface Row {
  flavour: Flavour;
  /** Applies from this version on (the last matching row of each key wins). */
  since: [number, number, number];
  set: Partial<Omit<Dialect, 'version'>>;
}

const COMMON_DUMP = ['--single-transaction', '--all-databases', '--routines', '--events', '--triggers', '--hex-blob', '--quick'];

const TABLE: Row[] = [
  {
    flavour: 'mariadb',
    since: [10, 5, 0],
    set: {
      replicaStatus: 'SHOW SLAVE STATUS',
      binlogStatus: 'SHOW MASTER STATUS',
      startReplica: 'START SLAVE',
      stopReplica: 'STOP SLAVE',
      resetReplicaAll: 'RESET SLAVE ALL',
      resetBinlogs: 'RESET MASTER',
      changeSource: (o) => changeStatement('CHANGE MASTER TO', 'MASTER', 'MASTER_USE_GTID = slave_pos', o),
      executedGtids: '@@GLOBAL.gtid_binlog_pos',
      waitForGtids: 'SELECT MASTER_GTID_WAIT(?, ?) AS r',
      readOnly: (on) => [`SET GLOBAL read_only = ${on ? 1 : 0}`],
      superReadOnly: null,
      disableEventOnReplica: 'DISABLE ON SLAVE',
      needsOptionsFile: true,
      setServerId: 'SET GLOBAL server_id = ?',
      dumpProgram: 'mariadb-dump',
      clientProgram: 'mariadb',
      clientTls: (t) => ['ssl', ...tlsFiles(t), ...(t.verify ? ['ssl-verify-server-cert'] : [])],
      dumpArgs: [...COMMON_DUMP, '--gtid', '--master-data=1'],
      // MariaDB takes a mysql_native_password hash: the password itself never travels in a statement.
      replicationUser: (user, host, hash) => [
        { sql: 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY PASSWORD ?', values: [user, host, hash] },
        { sql: 'ALTER USER ?@? IDENTIFIED BY PASSWORD ?', values: [user, host, hash] },
        { sql: 'GRANT REPLICATION SLAVE ON *.* TO ?@?', values: [user, host] },
      ],
    },
  },
  {
    flavour: 'mysql',
    since: [8, 0, 0],
    set: {
      replicaStatus: 'SHOW SLAVE STATUS',
      binlogStatus: 'SHOW MASTER STATUS',
      startReplica: 'START SLAVE',
      stopReplica: 'STOP SLAVE',
      resetReplicaAll: 'RESET SLAVE ALL',
      resetBinlogs: 'RESET MASTER',
      changeSource: (o) => changeStatement('CHANGE MASTER TO', 'MASTER', 'MASTER_AUTO_POSITION = 1, GET_MASTER_PUBLIC_KEY = 1', o),
      executedGtids: '@@GLOBAL.gtid_executed',
      waitForGtids: 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r',
      readOnly: (on) => (on ? ['SET PERSIST read_only = ON'] : ['SET PERSIST super_read_only = OFF', 'SET PERSIST read_only = OFF']),
      superReadOnly: 'SET PERSIST super_read_only = ON',
      disableEventOnReplica: 'DISABLE ON SLAVE',
      needsOptionsFile: false,
      setServerId: 'SET PERSIST server_id = ?',
      dumpProgram: 'mysqldump',
      clientProgram: 'mysql',
      clientTls: (t) => [`ssl-mode=${t.verify ? 'VERIFY_IDENTITY' : 'REQUIRED'}`, ...tlsFiles(t)],
      dumpArgs: [...COMMON_DUMP, '--master-data=1', '--set-gtid-purged=ON'],
      // MySQL rewrites the password out of its logs; caching_sha2_password has no client-side hash form.
      replicationUser: (user, host, password) => [
        { sql: 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED WITH caching_sha2_password BY ?', values: [user, host, password] },
        { sql: 'ALTER USER ?@? IDENTIFIED WITH caching_sha2_password BY ?', values: [user, host, password] },
        { sql: 'GRANT REPLICATION SLAVE ON *.* TO ?@?', values: [user, host] },
      ],
    },
  },
  {
    flavour: 'mysql',
    since: [8, 0, 22],
    set: { replicaStatus: 'SHOW REPLICA STATUS', startReplica: 'START REPLICA', stopReplica: 'STOP REPLICA', resetReplicaAll: 'RESET REPLICA ALL', disableEventOnReplica: 'DISABLE ON REPLICA' },
  },
  {
    flavour: 'mysql',
    since: [8, 0, 23],
    set: {
      changeSource: (o) => changeStatement('CHANGE REPLICATION SOURCE TO', 'SOURCE', 'SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1', o),
    },
  },
  { flavour: 'mysql', since: [8, 0, 26], set: { dumpArgs: [...COMMON_DUMP, '--source-data=1', '--set-gtid-purged=ON'] } },
  // 8.2 added the new spellings; 8.4 (LTS) removed SHOW MASTER STATUS and RESET MASTER.
  { flavour: 'mysql', since: [8, 2, 0], set: { binlogStatus: 'SHOW BINARY LOG STATUS', resetBinlogs: 'RESET BINARY LOGS AND GTIDS' } },
];

export function dialectFor(version: Version): Dialect {
  const rows = TABLE.filter((r) => r.flavour === version.flavour && atLeast(version, ...r.since));
  if (rows.length === 0) {
    const min = version.flavour === 'mariadb' ? 'MariaDB 10.5' : 'MySQL 8.0';
    throw new Error(`${version.flavour} ${version.text} is not supported; the oldest supported is ${min}`);
  }
  return Object.assign({ version }, ...rows.map((r) => r.set)) as Dialect;
}

/** MariaDB's mysql_native_password hash: `*` + hex(SHA1(SHA1(password))). */
export function nativePasswordHash(password: string): string {
  const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();
  return `*${sha1(sha1(Buffer.from(password, 'utf8'))).toString('hex').toUpperCase()}`;
}

/**
 * A statement as the plan shows it: `?` replaced by its value (quoted), the values at
 * `secret` positions as ***, `KEY = value` written `KEY=value`.
 */
export function renderStatement(sql: string, values: readonly unknown[] = [], secret: readonly number[] = []): string {
  let i = 0;
  const filled = sql.replace(/\?/g, () => {
    const at = i++;
    if (secret.includes(at)) return "'***'";
    const v = values[at];
    return typeof v === 'number' ? String(v) : `'${String(v).replace(/'/g, "''")}'`;
  });
  return filled.replace(/(\w+) = /g, '$1=');
}

/**
 * Whether a GTID position `have` holds every transaction of `want`.
 * MariaDB: `domain-server-seq` per domain (sequence numbers grow within a domain), e.g.
 * `0-1-7,1-2-5`. MySQL: GTID sets, `uuid:1-5:7,uuid2:1-3` (case-insensitive uuids).
 * Null when either cannot be read.
 */
export function gtidsCover(flavour: Flavour, have: string, want: string): boolean | null {
  return flavour === 'mariadb' ? mariadbCovers(have, want) : mysqlCovers(have, want);
}

function mariadbCovers(have: string, want: string): boolean | null {
  const read = (text: string): Map<number, bigint> | null => {
    const out = new Map<number, bigint>();
    for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
      const m = /^(\d+)-(\d+)-(\d+)$/.exec(part);
      if (!m) return null;
      const domain = Number(m[1]);
      const seq = BigInt(m[3]!);
      if ((out.get(domain) ?? -1n) < seq) out.set(domain, seq);
    }
    return out;
  };
  const h = read(have);
  const w = read(want);
  if (!h || !w) return null;
  return [...w].every(([domain, seq]) => (h.get(domain) ?? -1n) >= seq);
}

type Intervals = Array<[bigint, bigint]>;

function readMysqlSet(text: string): Map<string, Intervals> | null {
  const out = new Map<string, Intervals>();
  for (const part of text.replace(/\s+/g, '').split(',').filter(Boolean)) {
    const [uuid, ...ranges] = part.split(':');
    if (!uuid || ranges.length === 0) return null;
    const list = out.get(uuid.toLowerCase()) ?? [];
    for (const r of ranges) {
      // MySQL 8.3+ tagged GTIDs (uuid:tag:1-5) are not read: the answer is then "cannot tell".
      const m = /^(\d+)(?:-(\d+))?$/.exec(r);
      if (!m) return null;
      list.push([BigInt(m[1]!), BigInt(m[2] ?? m[1]!)]);
    }
    out.set(uuid.toLowerCase(), list);
  }
  return out;
}

function mysqlCovers(have: string, want: string): boolean | null {
  const h = readMysqlSet(have);
  const w = readMysqlSet(want);
  if (!h || !w) return null;
  for (const [uuid, ranges] of w) {
    const mine = [...(h.get(uuid) ?? [])].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [from, to] of ranges) {
      // Walk the sorted intervals of `have`, extending coverage from `from` until `to` is reached.
      let next = from;
      for (const [a, b] of mine) {
        if (a > next) break;
        if (b >= next) next = b + 1n;
        if (next > to) break;
      }
      if (next <= to) return false;
    }
  }
  return true;
}
