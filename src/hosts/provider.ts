import { DbreplError } from '../errors';
import type { Server } from '../model';
import type { Endpoint, Host, HostProvider } from './host';
import { LocalHost, minimalEnv } from './local';

/**
 * Chooses where a server's host commands run and where the tool's connections go. Servers
 * without `ssh` use the runner itself and direct connections. The SSH transport (ssh2) is
 * the next step of the hosts layer; until it lands a server with `ssh` is refused with a
 * clear message rather than run in the wrong place.
 */
export class DefaultHostProvider implements HostProvider {
  private readonly local: LocalHost;

  /** `env` is the runner's environment: only PATH, HOME and the locale are handed on to host commands. */
  constructor(env: NodeJS.ProcessEnv) {
    this.local = new LocalHost(minimalEnv(env));
  }

  async forServer(server: Server): Promise<Host> {
    if (server.ssh) {
      throw new DbreplError(
        'USAGE',
        `${server.ref}: host commands over SSH are not supported by this version yet; remove "ssh" to run them on the runner, or run the tool on the server's host`,
      );
    }
    return this.local;
  }

  async endpoint(server: Server): Promise<Endpoint> {
    return { host: server.host, port: server.port };
  }

  async closeAll(): Promise<void> {
    await this.local.close();
  }
}
