import { createHash } from 'node:crypto';
import type * as net from 'node:net';
import type { Server } from '../model';
import type { Endpoint, Host, HostProvider } from './host';
import { LocalHost, minimalEnv } from './local';
import { openTunnel, SshConnection, SshHost, SshTarget } from './ssh';

/**
 * Chooses where a server's host commands run and where the tool's connections go: a server
 * without `ssh` uses the runner itself and direct connections; a server with `ssh` uses one
 * SSH connection per host (shared by every step and every tunnel of the run) and reaches
 * its database through a tunnel from that host. Everything is closed by closeAll.
 */
export class DefaultHostProvider implements HostProvider {
  private readonly local: LocalHost;
  private readonly sshHosts = new Map<string, SshHost>();
  private readonly tunnels = new Map<string, Promise<{ server: net.Server; endpoint: Endpoint }>>();

  /** `env` is the runner's environment: only PATH, HOME and the locale are handed on to host commands. */
  constructor(private readonly env: NodeJS.ProcessEnv) {
    this.local = new LocalHost(minimalEnv(env));
  }

  private sshHost(server: Server): SshHost {
    const target = sshTarget(server, this.env);
    // Shared only by servers that trust the same keys and log in with the same credentials:
    // a server's own host_key, known_hosts and private_key are always the ones applied to it.
    const key = createHash('sha256').update(JSON.stringify([target.user, target.host, target.port, target.via, target.sudo, target.hostKey, target.knownHosts, target.privateKey, target.passphrase])).digest('hex');
    let host = this.sshHosts.get(key);
    if (!host) {
      host = new SshHost(new SshConnection(target));
      this.sshHosts.set(key, host);
    }
    return host;
  }

  async forServer(server: Server): Promise<Host> {
    return server.ssh ? this.sshHost(server) : this.local;
  }

  async endpoint(server: Server): Promise<Endpoint> {
    if (!server.ssh) return { host: server.host, port: server.port };
    const key = `${server.ref}|${server.host}:${server.port}`;
    let tunnel = this.tunnels.get(key);
    if (!tunnel) {
      tunnel = openTunnel(this.sshHost(server).connection, server.host, server.port, socketPath(server)).then((s) => {
        const address = s.address() as net.AddressInfo;
        return { server: s, endpoint: { host: '127.0.0.1', port: address.port } };
      });
      // A tunnel that could not open is not kept: the next use tries again (and says why).
      tunnel.catch(() => this.tunnels.delete(key));
      this.tunnels.set(key, tunnel);
    }
    return (await tunnel).endpoint;
  }

  async closeAll(): Promise<void> {
    for (const t of this.tunnels.values()) await t.then((x) => new Promise<void>((r) => x.server.close(() => r()))).catch(() => undefined);
    this.tunnels.clear();
    for (const h of this.sshHosts.values()) await h.close();
    this.sshHosts.clear();
    await this.local.close();
  }
}

/**
 * A server whose `host` is a path listens on a Unix socket of its host: PostgreSQL's is a
 * directory holding `.s.PGSQL.<port>`, the others' the socket file itself.
 */
export function socketPath(server: Server): string | undefined {
  if (!server.host.startsWith('/')) return undefined;
  return server.engine === 'postgresql' ? `${server.host.replace(/\/+$/, '')}/.s.PGSQL.${server.port}` : server.host;
}

/** A server's SSH settings as a connection target (topology has checked that they are complete). */
export function sshTarget(server: Server, env: NodeJS.ProcessEnv): SshTarget {
  const s = server.ssh!;
  const user = s.user ?? env.USER ?? 'root';
  return {
    host: s.host ?? server.host,
    port: s.port ?? 22,
    user,
    privateKey: s.private_key ?? '',
    passphrase: s.passphrase,
    knownHosts: s.known_hosts,
    hostKey: s.host_key,
    via: s.via ? { host: s.via.host, port: s.via.port ?? 22, user: s.via.user ?? user } : undefined,
    sudo: s.sudo ?? false,
  };
}
