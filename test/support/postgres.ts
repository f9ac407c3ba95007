import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { freePort, sh } from './sh';

/**
 * Real PostgreSQL clusters for the tests: initdb into a temp dir, own port on loopback,
 * the binaries of the Debian postgresql package. Two layouts: `initdb` keeps the
 * configuration in the data directory; `debian` keeps it in a separate etc/ directory
 * (as /etc/postgresql does), passed with -c config_file.
 */

export const PG_BIN = process.env.DBREPL_PG_BIN ?? findPgBin();

function findPgBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(root, versions[0]!, 'bin') : '/usr/lib/postgresql/15/bin';
}

export type Layout = 'initdb' | 'debian';

export interface PgOptions {
  layout?: Layout;
  /** Full pg_hba.conf content; default: initdb's (which admits replication from 127.0.0.1). */
  hba?: string;
  settings?: Record<string, string>;
  /** Superuser password; servers of one replication group share it, as a physical copy carries the master's roles. */
  password?: string;
  /** Directory to create the cluster in (default: the system temp dir). */
  parent?: string;
  /** Run it inside this network namespace (a lab host), listening on `address` only. */
  netns?: string;
  address?: string;
  /** Serve TLS with this certificate (ssl = on). */
  tls?: import('./tls').Pem;
}

export class PgCluster {
  constructor(
    readonly port: number,
    readonly password: string,
    readonly base: string,
    readonly dataDir: string,
    readonly confDir: string,
    readonly layout: Layout,
    /** The address it listens on (replication.yml's host). */
    readonly host = '127.0.0.1',
    /** The lab namespace it runs in, if any. */
    readonly netns?: string,
  ) {}

  /** The test's own way in: its Unix socket for a cluster in a namespace (the runner has no route to it). */
  private get connectHost(): string {
    return this.netns ? this.base : this.host;
  }

  private inNamespace(line: string): string[] {
    return this.netns ? ['ip', 'netns', 'exec', this.netns, '/bin/sh', '-c', line] : ['/bin/sh', '-c', line];
  }

  get logFile(): string {
    return path.join(this.base, 'server.log');
  }

  get configFile(): string {
    return path.join(this.confDir, 'postgresql.conf');
  }

  /** The shell lines replication.yml gets as `service:` for this cluster. */
  get service(): { stop: string; start: string } {
    const opts = this.layout === 'debian' ? ` -o "-c config_file=${this.configFile}"` : '';
    return {
      stop: `cd /tmp && runuser -u postgres -- ${PG_BIN}/pg_ctl stop -D ${this.dataDir} -m fast -w -t 60`,
      start: `cd /tmp && runuser -u postgres -- ${PG_BIN}/pg_ctl start -D ${this.dataDir}${opts} -l ${this.logFile} -w -t 60`,
    };
  }

  async start(): Promise<void> {
    const [cmd, ...args] = this.inNamespace(this.service.start);
    await sh(cmd!, args);
  }

  async stop(): Promise<void> {
    const [cmd, ...args] = this.inNamespace(this.service.stop);
    await sh(cmd!, args);
  }

  async query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]> {
    const c = new Client({ host: this.connectHost, port: this.port, user: 'postgres', password: this.password, database: 'postgres', connectionTimeoutMillis: 5000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query(text, params)).rows as R[];
    } finally {
      await c.end();
    }
  }

  async isReady(): Promise<boolean> {
    try {
      await this.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async destroy(): Promise<void> {
    await sh('/bin/sh', ['-c', `cd /tmp && runuser -u postgres -- ${PG_BIN}/pg_ctl stop -D ${this.dataDir} -m immediate -w -t 30`], { allowFail: true });
    fs.rmSync(this.base, { recursive: true, force: true });
  }
}

async function asPostgres(args: string[]): Promise<void> {
  await sh('runuser', ['-u', 'postgres', '--', ...args]);
}

export async function startPostgres(options: PgOptions = {}): Promise<PgCluster> {
  const layout = options.layout ?? 'initdb';
  const base = fs.mkdtempSync(path.join(options.parent ?? os.tmpdir(), 'dbrepl-pg-'));
  fs.chmodSync(base, 0o755);
  const dataDir = path.join(base, 'data');
  const confDir = layout === 'debian' ? path.join(base, 'etc') : dataDir;
  const password = options.password ?? randomBytes(12).toString('hex');
  const pwfile = path.join(base, 'pw');
  fs.writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  await sh('chown', ['postgres:postgres', base, pwfile]);
  await asPostgres([`${PG_BIN}/initdb`, '-D', dataDir, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '-E', 'UTF8', '--locale=C']);
  fs.rmSync(pwfile);
  const port = await freePort();

  if (layout === 'debian') {
    fs.mkdirSync(confDir, { mode: 0o755 });
    for (const f of ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf']) fs.renameSync(path.join(dataDir, f), path.join(confDir, f));
    await sh('chown', ['-R', 'postgres:postgres', confDir]);
  }
  const settings: Record<string, string> = {
    port: String(port),
    listen_addresses: `'${options.address ?? '127.0.0.1'}'`,
    unix_socket_directories: `'${base}'`,
    // Test clusters trade durability for speed; replication behaves the same.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'on',
    max_wal_senders: '10',
    max_replication_slots: '10',
    wal_level: 'replica',
    hot_standby: 'on',
    log_min_messages: 'warning',
    ...options.settings,
  };
  if (layout === 'debian') {
    settings.data_directory = `'${dataDir}'`;
    settings.hba_file = `'${path.join(confDir, 'pg_hba.conf')}'`;
    settings.ident_file = `'${path.join(confDir, 'pg_ident.conf')}'`;
  }
  if (options.tls) {
    const files = await (await import('./tls')).installFor('postgres', base, options.tls);
    Object.assign(settings, { ssl: 'on', ssl_cert_file: `'${files.cert}'`, ssl_key_file: `'${files.key}'` });
  }
  const conf = path.join(confDir, 'postgresql.conf');
  fs.appendFileSync(conf, '\n# test settings\n' + Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
  if (options.hba !== undefined) fs.writeFileSync(path.join(confDir, 'pg_hba.conf'), options.hba);
  const cluster = new PgCluster(port, password, base, dataDir, confDir, layout, options.address ?? '127.0.0.1', options.netns);
  await cluster.start();
  return cluster;
}

/** pg_hba.conf without any replication rule: the tool must add one. */
export const HBA_WITHOUT_REPLICATION = [
  'local all all trust',
  'host all all 127.0.0.1/32 scram-sha-256',
  'host replication all 127.0.0.2/32 reject',
  '',
].join('\n');

/**
 * Makes a base backup of `master` fail on this host: a tablespace outside its data
 * directory, whose path (taken on the same machine) pg_basebackup cannot create again.
 */
export async function withLocalTablespace(master: PgCluster): Promise<void> {
  const ts = path.join(master.base, 'tblspc');
  fs.mkdirSync(ts);
  await sh('chown', ['postgres:postgres', ts]);
  await master.query(`CREATE TABLESPACE extra LOCATION '${ts}'`);
}
