import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createConnection, RowDataPacket } from 'mysql2/promise';
import { freePort, sh } from './sh';

/**
 * Real MariaDB servers for the tests, laid out and started the way Debian does it:
 * mariadb-install-db into a temp dir, mariadbd started as the `mysql` user (as the systemd
 * unit does, so an option file it cannot read is skipped as in production), on its own
 * port on loopback, with a root-owned option file that includes a root-owned conf.d/
 * (where dbrepl keeps the settings that must survive a restart, as in
 * /etc/mysql/mariadb.conf.d). The data, socket, pid and log belong to mysql. Admin login
 * `admin`@`%` with a password; root stays socket-only.
 */
export const MARIADBD = process.env.DBREPL_MARIADBD ?? '/usr/sbin/mariadbd';

export interface MariaOptions {
  /** Extra [mysqld] settings. */
  settings?: Record<string, string>;
  logBin?: boolean;
  serverId?: number;
  password?: string;
  /** Run it inside this network namespace (a lab host), listening on `address` only. */
  netns?: string;
  address?: string;
  /** Serve TLS with this certificate (and trust this CA for clients that present one). */
  tls?: { pem: import('./tls').Pem; ca: import('./tls').Pem };
}

export class MariaServer {
  constructor(
    readonly port: number,
    readonly password: string,
    readonly base: string,
    /** The address it listens on (replication.yml's host). */
    readonly host = '127.0.0.1',
    /** The lab namespace it runs in, if any (the test then reaches it through its socket). */
    readonly netns?: string,
  ) {}

  private inNamespace(line: string): [string, string[]] {
    return this.netns ? ['ip', ['netns', 'exec', this.netns, '/bin/sh', '-c', line]] : ['/bin/sh', ['-c', line]];
  }

  get dataDir(): string {
    return path.join(this.base, 'data');
  }
  get optionsFile(): string {
    return path.join(this.base, 'my.cnf');
  }
  /** The file dbrepl may own (included by my.cnf). */
  get dbreplOptionsFile(): string {
    return path.join(this.base, 'conf.d', '90-dbrepl.cnf');
  }
  get runDir(): string {
    return path.join(this.base, 'run');
  }
  get socket(): string {
    return path.join(this.runDir, 'mysqld.sock');
  }
  get pidFile(): string {
    return path.join(this.runDir, 'mysqld.pid');
  }

  get service(): { stop: string; start: string } {
    const admin = `mariadb-admin --no-defaults --socket=${this.socket} --user=root`;
    return {
      stop: `${admin} shutdown && i=0; while [ -e ${this.pidFile} ]; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1; done`,
      start: `(setsid runuser -u mysql -- ${MARIADBD} --defaults-file=${this.optionsFile} >>${this.runDir}/server.log 2>&1 &); i=0; until ${admin} ping >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1; done`,
    };
  }

  async start(): Promise<void> {
    await sh(...this.inNamespace(this.service.start));
  }

  async stop(): Promise<void> {
    await sh(...this.inNamespace(this.service.stop));
  }

  async query<R = RowDataPacket>(sql: string, params: unknown[] = []): Promise<R[]> {
    const where = this.netns ? { socketPath: this.socket } : { host: this.host, port: this.port };
    const c = await createConnection({ ...where, user: 'admin', password: this.password, connectTimeout: 5000 });
    try {
      const [rows] = await c.query(sql, params);
      return rows as R[];
    } finally {
      await c.end();
    }
  }

  async destroy(): Promise<void> {
    await sh(...this.inNamespace(this.service.stop), { allowFail: true });
    fs.rmSync(this.base, { recursive: true, force: true });
  }
}

// Bootstraps running at the same time collide on temporary tables in /tmp: one at a time.
let installs: Promise<unknown> = Promise.resolve();
function installDb(dataDir: string, tmp: string): Promise<unknown> {
  const next = installs.then(() =>
    sh('mariadb-install-db', ['--no-defaults', '--user=mysql', `--datadir=${dataDir}`, '--skip-test-db', '--skip-name-resolve', `--tmpdir=${tmp}`]),
  );
  installs = next.catch(() => undefined);
  return next;
}

export async function startMariaDB(options: MariaOptions = {}): Promise<MariaServer> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-maria-'));
  fs.chmodSync(base, 0o755);
  const port = await freePort();
  const password = options.password ?? randomBytes(12).toString('hex');
  const server = new MariaServer(port, password, base, options.address ?? '127.0.0.1', options.netns);
  // /etc/mysql/mariadb.conf.d: root's, as on Debian.
  fs.mkdirSync(path.join(base, 'conf.d'), { mode: 0o755 });
  fs.mkdirSync(path.join(base, 'tmp'));
  fs.mkdirSync(server.runDir);
  const settings: Record<string, string> = {
    datadir: server.dataDir,
    port: String(port),
    'bind-address': options.address ?? '127.0.0.1',
    socket: server.socket,
    tmpdir: path.join(base, 'tmp'),
    'pid-file': server.pidFile,
    'skip-name-resolve': '1',
    'server-id': String(options.serverId ?? 1),
    'binlog-format': 'ROW',
    'innodb-buffer-pool-size': '64M',
    'innodb-log-file-size': '48M',
    // Test servers trade durability for speed; replication behaves the same.
    'innodb-flush-log-at-trx-commit': '2',
    'sync-binlog': '0',
    ...(options.logBin === false ? {} : { 'log-bin': path.join(base, 'data', 'mysql-bin') }),
    ...options.settings,
  };
  if (options.tls) {
    const files = await (await import('./tls')).installFor('mysql', server.runDir, options.tls.pem, options.tls.ca);
    Object.assign(settings, { 'ssl-cert': files.cert, 'ssl-key': files.key, 'ssl-ca': files.ca! });
  }
  fs.writeFileSync(
    server.optionsFile,
    `[mysqld]\n${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n')}\n!includedir ${path.join(base, 'conf.d')}\n`,
    { mode: 0o644 },
  );
  await sh('chown', ['mysql:mysql', path.join(base, 'tmp'), server.runDir]);
  await installDb(server.dataDir, path.join(base, 'tmp'));
  await server.start();
  const sock = ['--no-defaults', `--socket=${server.socket}`, '--user=root'];
  await sh('mariadb', [...sock, '-e', `CREATE USER 'admin'@'%' IDENTIFIED BY '${password}'; GRANT ALL ON *.* TO 'admin'@'%' WITH GRANT OPTION;`]);
  return server;
}
