import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { eventually, freePort, sh } from './sh';

/**
 * Real redis-server instances for the tests: own port on loopback, requirepass, a config
 * file (so CONFIG REWRITE persists), RDB in a temp dir. `service` stops and starts it
 * without a password on the command line.
 */
export interface RedisOptions {
  settings?: Record<string, string>;
  password?: string;
  /** Run it inside this network namespace (a lab host), listening on `address`, or on its Unix socket only. */
  netns?: string;
  address?: string;
  socketOnly?: boolean;
  /** Run it as this system user (as systemd does), its directory owned by that user. */
  user?: string;
}

export class RedisServer {
  constructor(
    readonly port: number,
    readonly password: string,
    readonly base: string,
    /** The address it listens on, or its socket path (replication.yml's host). */
    readonly host = '127.0.0.1',
    readonly netns?: string,
    readonly user?: string,
  ) {}

  get socket(): string {
    return path.join(this.base, 'redis.sock');
  }

  private get socketOnly(): boolean {
    return this.host.startsWith('/');
  }

  private inNamespace(line: string): [string, string[]] {
    return this.netns ? ['ip', ['netns', 'exec', this.netns, '/bin/sh', '-c', line]] : ['/bin/sh', ['-c', line]];
  }

  get configFile(): string {
    return path.join(this.base, 'redis.conf');
  }
  get pidFile(): string {
    return path.join(this.base, 'redis.pid');
  }
  get logFile(): string {
    return path.join(this.base, 'redis.log');
  }

  get service(): { stop: string; start: string } {
    return {
      stop: `kill $(cat ${this.pidFile}); i=0; while [ -e ${this.pidFile} ]; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1; done`,
      start: `${this.user ? `setpriv --reuid ${this.user} --regid ${this.user} --init-groups ` : ''}redis-server ${this.configFile}; i=0; until redis-cli ${this.socketOnly ? `-s ${this.socket}` : `-h ${this.host} -p ${this.port}`} ping 2>/dev/null | grep -qE 'PONG|NOAUTH'; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1; done`,
    };
  }

  /** The test's own way in: the Unix socket for a server in a namespace (the runner has no route to it). */
  client(): Redis {
    const where = this.netns || this.socketOnly ? { path: this.socket } : { host: this.host, port: this.port };
    return new Redis({ ...where, password: this.password, lazyConnect: false, maxRetriesPerRequest: 1 });
  }

  async call(...args: Array<string | number>): Promise<unknown> {
    const c = this.client();
    c.on('error', () => undefined);
    try {
      return await c.call(String(args[0]), ...args.slice(1).map(String));
    } finally {
      c.disconnect();
    }
  }

  async info(): Promise<Record<string, string>> {
    const text = String(await this.call('INFO', 'replication'));
    return Object.fromEntries(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
  }

  async start(): Promise<void> {
    await sh(...this.inNamespace(this.service.start));
  }

  async stop(): Promise<void> {
    await sh(...this.inNamespace(this.service.stop));
  }

  async destroy(): Promise<void> {
    await sh('/bin/sh', ['-c', `[ -e ${this.pidFile} ] && kill -9 $(cat ${this.pidFile})`], { allowFail: true });
    fs.rmSync(this.base, { recursive: true, force: true });
  }
}

export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-redis-'));
  // The socket's directory must be passable for whoever opens it (the SSH user, for a tunnel).
  if (options.socketOnly) fs.chmodSync(base, 0o755);
  const port = await freePort();
  const password = options.password ?? randomBytes(12).toString('hex');
  const server = new RedisServer(port, password, base, options.socketOnly ? path.join(base, 'redis.sock') : (options.address ?? '127.0.0.1'), options.netns, options.user);
  const settings: Record<string, string> = {
    port: options.socketOnly ? '0' : String(port),
    bind: options.address ?? '127.0.0.1',
    unixsocket: server.socket,
    // sshd opens a forwarded socket as the SSH user (not through sudo): it must be allowed to.
    unixsocketperm: options.socketOnly ? '777' : '700',
    daemonize: 'yes',
    pidfile: server.pidFile,
    logfile: server.logFile,
    dir: base,
    dbfilename: 'dump.rdb',
    requirepass: password,
    // Without the default 5 s delay a first sync links in well under a second.
    'repl-diskless-sync-delay': '0',
    'enable-debug-command': 'yes',
    save: '""',
    appendonly: 'no',
    ...options.settings,
  };
  fs.writeFileSync(server.configFile, Object.entries(settings).map(([k, v]) => `${k} ${v}`).join('\n') + '\n', { mode: 0o600 });
  if (options.user) await sh('chown', ['-R', `${options.user}:`, base]);
  await server.start();
  await eventually(async () => (await server.call('PING')) === 'PONG', 10_000, 'redis to answer');
  return server;
}
