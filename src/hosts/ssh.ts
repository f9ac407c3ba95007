import * as net from 'node:net';
import type { Client, ClientChannel, ConnectConfig } from 'ssh2';
import { ConnectionError, DbreplError } from '../errors';
import { currentSignal } from '../util/cancel';
import { orphanWatch } from './host';
import type { CommandResult, Host, HostFacts, RunOptions } from './host';
import { preferredKeyTypes, verifyHostKey } from './known-hosts';
import { COMMAND_TIMEOUT_MS } from './limits';
import { lineSplitter } from './local';
import { shellLine } from './quote';

/** Where and how to reach a host over SSH (from a server's `ssh` settings, merged with `defaults.ssh`). */
export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  passphrase?: string;
  knownHosts?: string;
  hostKey?: string;
  via?: { host: string; port: number; user: string };
  sudo: boolean;
}

const KEEPALIVE_MS = 10_000;
const READY_TIMEOUT_MS = 20_000;
/** After a command's own limit (enforced on the host by `timeout`), how long before the channel is closed from here. */
const CLOSE_GRACE_MS = 10_000;
const CANCEL_CLOSE_MS = 3_000;
const REMOTE_WATCH = orphanWatch('kill -TERM $c', 'echo "@@dbrepl-pid $$" >&2\n');
/** Output kept per stream, as on the runner. */
const MAX_OUTPUT = 8 * 1024 * 1024;

export function targetLabel(t: SshTarget): string {
  return `ssh ${t.user}@${t.host}${t.port === 22 ? '' : `:${t.port}`}${t.via ? ` via ${t.via.host}` : ''}`;
}

/**
 * One SSH connection to a host (through its bastion when `via` is set), opened on first
 * use, shared by every command and tunnel of the run, kept alive, closed at the end. The
 * host key is verified before anything is sent: a refusal stops there, with the host, the
 * key seen and the key expected. A dropped connection is reopened once, at the next use.
 */
export class SshConnection {
  private client: Client | null = null;
  private bastion: Client | null = null;
  private opening: Promise<Client> | null = null;
  private drops = 0;
  private closed = false;
  readonly label: string;

  constructor(readonly target: SshTarget) {
    this.label = targetLabel(target);
  }

  async get(): Promise<Client> {
    if (this.closed) throw new ConnectionError(this.label, 'the SSH connection is closed');
    if (this.client) return this.client;
    // Reopened once after a drop; a second drop ends the run's use of this host.
    if (this.drops >= 2) throw new ConnectionError(this.label, 'the SSH connection dropped again after being reopened; giving up');
    this.opening ??= this.open().finally(() => (this.opening = null));
    return this.opening;
  }

  /** A command found the connection gone (exec refused): count it as a drop. */
  dropped(client: Client): void {
    if (this.client === client) {
      this.client = null;
      this.drops++;
    }
  }

  private async open(): Promise<Client> {
    const t = this.target;
    if (!t.privateKey) throw new ConnectionError(this.label, 'ssh needs private_key (an OpenSSH or PEM private key, usually ${SSH_PRIVATE_KEY}); keys are never read from disk or an agent');
    let sock: NodeJS.ReadableStream | undefined;
    if (t.via) {
      this.bastion?.end();
      const bastion = await connectClient({ host: t.via.host, port: t.via.port, user: t.via.user }, t, undefined, `${targetLabel({ ...t, ...t.via, via: undefined })} (bastion)`);
      this.bastion = bastion;
      bastion.on('close', () => {
        if (this.bastion === bastion) this.bastion = null;
      });
      sock = await withTimeout(
        new Promise<ClientChannel>((resolve, reject) =>
          bastion.forwardOut('127.0.0.1', 0, t.host, t.port, (err, stream) => (err ? reject(new ConnectionError(this.label, `the bastion ${t.via!.host} cannot reach ${t.host}:${t.port}: ${err.message}`)) : resolve(stream))),
        ),
        READY_TIMEOUT_MS,
        () => new ConnectionError(this.label, `the bastion ${t.via!.host} did not open a channel to ${t.host}:${t.port} within ${READY_TIMEOUT_MS / 1000} s`),
      ).catch((err: unknown) => {
        bastion.end();
        throw err;
      });
    }
    const client = await connectClient({ host: t.host, port: t.port, user: t.user }, t, sock, this.label).catch((err: unknown) => {
      this.bastion?.end();
      throw err;
    });
    if (this.closed) {
      // Closed while it was opening: nobody will use (or close) it.
      client.end();
      this.bastion?.end();
      throw new ConnectionError(this.label, 'the SSH connection is closed');
    }
    client.on('close', () => this.dropped(client));
    this.client = client;
    return client;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.opening?.catch(() => undefined);
    const c = this.client;
    this.client = null;
    c?.end();
    this.bastion?.end();
    this.bastion = null;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(error()), ms)))]).finally(() => clearTimeout(timer));
}

/** Offer the host key types the file trusts for that host first (see preferredKeyTypes). */
function hostKeyAlgorithms(where: { host: string; port: number }, t: SshTarget): Pick<ConnectConfig, 'algorithms'> {
  const pinned = where.host === t.host && where.port === t.port ? t.hostKey : undefined;
  const types = preferredKeyTypes(where, { knownHosts: t.knownHosts, hostKey: pinned });
  return types.length > 0 ? { algorithms: { serverHostKey: types as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {};
}

async function connectClient(where: { host: string; port: number; user: string }, t: SshTarget, sock: NodeJS.ReadableStream | undefined, label: string): Promise<Client> {
  // ssh2 is loaded when a server with ssh is first reached.
  const ssh2 = await import('ssh2');
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let refusal: string | null = null;
    const config: ConnectConfig = {
      host: sock ? undefined : where.host,
      port: sock ? undefined : where.port,
      sock: sock as ConnectConfig['sock'],
      username: where.user,
      privateKey: t.privateKey,
      passphrase: t.passphrase,
      keepaliveInterval: KEEPALIVE_MS,
      keepaliveCountMax: 3,
      readyTimeout: READY_TIMEOUT_MS,
      ...hostKeyAlgorithms(where, t),
      // Verified before authentication: a refused host never sees a credential or a command.
      hostVerifier: (key: Buffer): boolean => {
        const pinned = where.host === t.host && where.port === t.port ? t.hostKey : undefined;
        const verdict = verifyHostKey(where, key, { knownHosts: t.knownHosts, hostKey: pinned });
        if (!verdict.ok) refusal = verdict.message;
        return verdict.ok;
      },
    };
    let ready = false;
    client.once('ready', () => {
      ready = true;
      // Many small round trips (a database's handshake, short commands): no Nagle delays.
      client.setNoDelay(true);
      resolve(client);
    });
    // Every error is handled: before `ready` it fails the open; after, the connection closes
    // and the next use reopens it (an unhandled 'error' would end the whole process).
    client.on('error', (err: Error & { level?: string }) => {
      if (ready) return;
      const why = refusal ?? (err.level === 'client-authentication' ? `authentication as ${where.user} failed (the private key is not accepted)` : err.message);
      reject(new ConnectionError(label, `cannot open the SSH connection: ${why}`, { cause: err }));
    });
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 throws at once on a key it cannot parse (or a wrong passphrase).
      reject(new ConnectionError(label, `cannot use the SSH private key: ${(err as Error).message}`, { cause: err }));
    }
  });
}

/**
 * Host commands over SSH. The command line is built from quoted arguments (the remote
 * login shell reads it); secrets are never in it (runScript sends them on stdin). With
 * `sudo`, commands run through `sudo -n`; `as` switches to the files' owner with setpriv,
 * as on the runner. The time limit is enforced on the host by `timeout` (which stops the
 * command's whole process group) and here by closing the channel.
 */
export class SshHost implements Host {
  readonly label: string;
  private cachedFacts: HostFacts | undefined;

  constructor(readonly connection: SshConnection) {
    this.label = connection.label;
  }

  private get conn(): SshConnection {
    return this.connection;
  }

  async run(argv: string[], options: RunOptions = {}): Promise<CommandResult> {
    const timeoutMs = options.timeoutMs ?? COMMAND_TIMEOUT_MS;
    const { sudo } = this.conn.target;
    const signal = options.signal ?? currentSignal();
    if (signal?.aborted) return { code: 130, stdout: '', stderr: 'not started: the run was cancelled', timedOut: false, cancelled: true };
    const parts: string[] = [];
    if (sudo) parts.push('sudo', '-n', '--');
    // `timeout` leads the command's process group and passes a TERM on to all of it. The
    // wrapper's pid (said first on stderr, then stripped) is what a cancelled run signals,
    // from another exec; and it stops the command when this connection's sshd session dies.
    parts.push('sh', '-c', REMOTE_WATCH, 'sh');
    parts.push('timeout', '-k', '5', `${Math.ceil(timeoutMs / 1000)}`);
    if (options.as) {
      const me = (await this.facts()).uid;
      if (options.as.uid !== me) {
        if (me !== 0) return { code: 126, stdout: '', stderr: `cannot run as uid ${options.as.uid} on ${this.label}: the SSH user is not root (set ssh.sudo: true)`, timedOut: false };
        parts.push('setpriv', `--reuid=${options.as.uid}`, `--regid=${options.as.gid}`, '--init-groups', '--reset-env', '--');
      }
    }
    const env = Object.entries(options.env ?? {});
    if (env.length > 0) parts.push('env', ...env.map(([k, v]) => `${k}=${v}`));
    parts.push(...argv);
    let client: Client;
    try {
      client = await this.conn.get();
    } catch (err) {
      return { code: 255, stdout: '', stderr: (err as Error).message, timedOut: false };
    }
    const started = Date.now();
    return new Promise((resolve) => {
      const onChannel = (err: Error | undefined, channel: ClientChannel): void => {
        if (err) {
          resolve({ code: 255, stdout: '', stderr: `cannot run a command over ${this.label}: ${err.message}`, timedOut: false });
          return;
        }
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        let code: number | null = null;
        let killedHere = false;
        let cancelled = false;
        let outBytes = 0;
        let errBytes = 0;
        let remotePid: number | null = null;
        let head: Buffer | null = Buffer.alloc(0);
        channel.on('data', (c: Buffer) => {
          if (outBytes < MAX_OUTPUT) out.push(c);
          outBytes += c.length;
        });
        const lines = options.progress ? lineSplitter(options.progress) : null;
        const onErr = (c: Buffer): void => {
          if (errBytes < MAX_OUTPUT) errs.push(c);
          errBytes += c.length;
          lines?.(c);
        };
        channel.stderr.on('data', (c: Buffer) => {
          if (head === null) return onErr(c);
          head = Buffer.concat([head, c]);
          const nl = head.indexOf(10);
          if (nl < 0 && head.length < 64) return;
          const first = head.subarray(0, nl < 0 ? head.length : nl).toString('utf8');
          const m = /^@@dbrepl-pid (\d+)$/.exec(first);
          const rest = m ? head.subarray(nl + 1) : head;
          if (m) remotePid = Number(m[1]);
          head = null;
          if (rest.length > 0) onErr(rest);
        });
        const onAbort = (): void => {
          cancelled = true;
          if (remotePid) {
            void client.exec(shellLine([...(sudo ? ['sudo', '-n', '--'] : []), 'kill', '-TERM', String(remotePid)]), (e, ch) => {
              if (!e) ch.on('close', () => undefined).resume();
            });
          }
          // And the channel itself, after a moment: the command's pipes close with it.
          setTimeout(() => channel.close(), CANCEL_CLOSE_MS).unref();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        channel.on('exit', (c: number | null, signal?: string) => {
          code = c ?? (signal ? 128 : 255);
        });
        const timer = setTimeout(() => {
          killedHere = true;
          channel.close();
        }, timeoutMs + CLOSE_GRACE_MS);
        channel.on('close', () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (cancelled) {
            resolve({ code: code ?? 130, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errs).toString('utf8'), timedOut: false, cancelled: true });
            return;
          }
          const elapsed = Date.now() - started;
          const stderr = Buffer.concat(errs).toString('utf8');
          if (code === null) {
            resolve({ code: 255, stdout: Buffer.concat(out).toString('utf8'), stderr: `${stderr}${stderr ? '\n' : ''}the SSH connection (${this.label}) was lost while the command ran`, timedOut: killedHere });
            return;
          }
          // `timeout` exits 124 (or 137 after -k) when it stopped the command.
          const timedOut = killedHere || ((code === 124 || code === 137) && elapsed >= timeoutMs - 1000);
          resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr, timedOut });
        });
        if (options.input !== undefined) channel.end(options.input);
        else channel.end();
      };
      try {
        client.exec(shellLine(parts), onChannel);
      } catch (err) {
        // ssh2 throws at once on a connection that is gone: a drop, reopened at the next use.
        this.conn.dropped(client);
        resolve({ code: 255, stdout: '', stderr: `cannot run a command over ${this.label}: ${(err as Error).message}`, timedOut: false });
      }
    });
  }

  async facts(): Promise<HostFacts> {
    if (this.cachedFacts) return this.cachedFacts;
    const r = await this.run(['sh', '-c', 'id -u; uname -n; cat /proc/sys/kernel/random/boot_id; readlink /proc/self/ns/net']);
    const [uid, hostname, bootId, netns] = r.stdout.trim().split('\n');
    if (r.code !== 0 || !uid || !hostname || !bootId) throw new DbreplError('STEP', `cannot read the host facts over ${this.label}: ${r.stderr.trim() || `exit ${r.code}`}`);
    // With sudo every command runs as root.
    this.cachedFacts = { uid: this.conn.target.sudo ? 0 : Number(uid), hostname: hostname.trim(), bootId: bootId.trim(), netns: (netns ?? '').trim() };
    return this.cachedFacts;
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}

/**
 * A local port that forwards every connection to `host:port` as the SSH host sees it (a
 * server that listens only on a private address of its host is reached this way), or to a
 * Unix socket of that host when `socket` is given (a server that listens on no address at
 * all). Any database driver connects to it as to the server itself.
 */
export async function openTunnel(conn: SshConnection, host: string, port: number, socket?: string): Promise<net.Server> {
  await conn.get();
  const server = net.createServer((local) => {
    local.on('error', () => undefined);
    local.setNoDelay(true);
    conn
      .get()
      .then(
        (client) =>
          new Promise<void>((resolve) =>
            ((cb: (err: Error | undefined, remote: ClientChannel) => void) =>
              socket ? client.openssh_forwardOutStreamLocal(socket, cb) : client.forwardOut('127.0.0.1', 0, host, port, cb))((err, remote) => {
              if (err) {
                local.destroy();
                return resolve();
              }
              remote.on('error', () => local.destroy());
              local.pipe(remote).pipe(local);
              resolve();
            }),
          ),
      )
      .catch(() => local.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}
