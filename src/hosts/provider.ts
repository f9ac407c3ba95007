import { DbreplError } from '../errors';
import type { Server } from '../topology';
import type { Host, HostProvider } from './host';
import { LocalHost } from './local';

/**
 * Chooses where a server's host commands run. Servers without `ssh` use the runner
 * itself. The SSH transport (ssh2) is the next step of the hosts layer; until it lands a
 * server with `ssh` is refused with a clear message rather than run in the wrong place.
 */
export class DefaultHostProvider implements HostProvider {
  private readonly local = new LocalHost();

  async forServer(server: Server): Promise<Host> {
    if (server.ssh) {
      throw new DbreplError(
        'USAGE',
        `${server.ref}: host commands over SSH are not supported by this version yet; remove "ssh" to run them on the runner, or run the tool on the server's host`,
      );
    }
    return this.local;
  }

  async closeAll(): Promise<void> {
    await this.local.close();
  }
}
