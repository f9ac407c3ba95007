import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { eventually, sh } from './sh';

/**
 * Database hosts of their own for the tests: network namespaces on this machine, each with
 * its own sshd. Every host has a front address the runner reaches (SSH only) and a back
 * address on a database network (a bridge with no address in the runner's namespace), so
 * the runner reaches the databases only through SSH. A range only these namespaces use,
 * 10.77.0.0/16, is made unreachable from the runner's namespace first (the guard route of
 * LAB.md): nothing in it can leave the machine. sshd logs in the user `dbrepl` (a /bin/sh
 * account with passwordless sudo, as a deploy user usually is) with the lab's key.
 */

export const SSH_USER = 'dbrepl';
const GUARD = '10.77.0.0/16';

export interface LabHost {
  name: string;
  ns: string;
  /** Where the runner reaches its sshd. */
  front: string;
  /** Its address on the database network (servers listen here; hosts reach each other here). */
  back: string;
  /** `<address> <type> <key>` lines for known_hosts, for both addresses (its ed25519 key). */
  knownHosts: string;
  /** The same for its RSA key. */
  rsaKnownHosts: string;
  hostKeyFingerprint: string;
  sshdLog: string;
}

export function netnsAvailable(): string | null {
  const probe = `dbrepl-probe-${process.pid}`;
  try {
    require('node:child_process').execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
    require('node:child_process').execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' });
    return null;
  } catch (err) {
    return `ip netns is refused here (${(err as Error).message.split('\n')[0]})`;
  }
}

async function ensureUser(): Promise<void> {
  if ((await sh('id', ['-u', SSH_USER], { allowFail: true })).code !== 0) {
    await sh('useradd', ['--system', '-M', '-d', '/', '-s', '/bin/sh', SSH_USER]);
  }
  // A locked account (`!`) is refused by sshd even for keys; `*` has no password and is not locked.
  await sh('usermod', ['-p', '*', SSH_USER]);
  fs.writeFileSync('/etc/sudoers.d/dbrepl-test', `${SSH_USER} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
}

export class Lab {
  readonly hosts = new Map<string, LabHost>();
  private readonly sshds: ChildProcess[] = [];
  private readonly links: string[] = [];
  private bridge = '';

  private constructor(
    readonly dir: string,
    readonly id: number,
    readonly clientKey: string,
    readonly clientPublicKey: string,
  ) {}

  /** Hosts by name; `front: false` makes a host the runner cannot reach at all (only its neighbours can). */
  static async create(names: string[], options: { hidden?: string[] } = {}): Promise<Lab> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-lab-'));
    fs.chmodSync(dir, 0o755);
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dbrepl-lab', '-f', path.join(dir, 'id_ed25519')]);
    const lab = new Lab(dir, process.pid % 120, fs.readFileSync(path.join(dir, 'id_ed25519'), 'utf8'), fs.readFileSync(path.join(dir, 'id_ed25519.pub'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'authorized_keys'), lab.clientPublicKey, { mode: 0o644 });
    await ensureUser();
    fs.mkdirSync('/run/sshd', { recursive: true });
    await sh('ip', ['route', 'replace', 'unreachable', GUARD]);
    const front = `10.77.${2 * lab.id}`;
    const back = `10.77.${2 * lab.id + 1}`;
    lab.bridge = `dbr${lab.id}br`;
    await sh('ip', ['link', 'add', lab.bridge, 'type', 'bridge']);
    await sh('ip', ['link', 'set', lab.bridge, 'up']);
    for (const [i, name] of names.entries()) {
      const ns = `dbrepl-${lab.id}-${name}`;
      await sh('ip', ['netns', 'add', ns]);
      await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      const f = `dbr${lab.id}f${i}`;
      const b = `dbr${lab.id}b${i}`;
      const frontIp = `${front}.${4 * i + 2}`;
      if (!options.hidden?.includes(name)) {
        await sh('ip', ['link', 'add', f, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
        lab.links.push(f);
        await sh('ip', ['addr', 'add', `${front}.${4 * i + 1}/30`, 'dev', f]);
        await sh('ip', ['link', 'set', f, 'up']);
        await sh('ip', ['-n', ns, 'addr', 'add', `${frontIp}/30`, 'dev', 'eth0']);
        await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      }
      await sh('ip', ['link', 'add', b, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns]);
      lab.links.push(b);
      await sh('ip', ['link', 'set', b, 'master', lab.bridge]);
      await sh('ip', ['link', 'set', b, 'up']);
      const backIp = `${back}.${i + 1}`;
      await sh('ip', ['-n', ns, 'addr', 'add', `${backIp}/24`, 'dev', 'eth1']);
      await sh('ip', ['-n', ns, 'link', 'set', 'eth1', 'up']);
      lab.hosts.set(name, await lab.startSshd(name, ns, options.hidden?.includes(name) ? '' : frontIp, backIp));
    }
    return lab;
  }

  private async startSshd(name: string, ns: string, front: string, back: string): Promise<LabHost> {
    const key = path.join(this.dir, `${name}_host_ed25519`);
    const rsa = path.join(this.dir, `${name}_host_rsa`);
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key]);
    // A second host key, as real hosts have: a client that trusts only this one must still get in.
    await sh('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', name, '-f', rsa]);
    const cfg = path.join(this.dir, `${name}_sshd_config`);
    fs.writeFileSync(
      cfg,
      [
        'Port 22',
        'ListenAddress 0.0.0.0',
        `HostKey ${key}`,
        `HostKey ${rsa}`,
        `PidFile ${path.join(this.dir, `${name}_sshd.pid`)}`,
        `AuthorizedKeysFile ${path.join(this.dir, 'authorized_keys')}`,
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin no',
        'StrictModes no',
        'AllowTcpForwarding yes',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    const log = path.join(this.dir, `${name}_sshd.log`);
    const out = fs.openSync(log, 'a');
    const child = spawn('ip', ['netns', 'exec', ns, '/usr/sbin/sshd', '-D', '-e', '-f', cfg], { stdio: ['ignore', out, out], detached: true });
    child.unref();
    this.sshds.push(child);
    const pub = fs.readFileSync(`${key}.pub`, 'utf8').trim().split(/\s+/);
    const fp = (await sh('ssh-keygen', ['-l', '-f', `${key}.pub`])).stdout.split(/\s+/)[1]!;
    // Ready when it answers on its address inside the namespace.
    await eventually(async () => (await sh('ip', ['netns', 'exec', ns, 'bash', '-c', `exec 3<>/dev/tcp/${back}/22`], { allowFail: true })).code === 0, 10_000, `sshd in ${ns}`);
    const addrs = [front, back].filter(Boolean);
    const rsaPub = fs.readFileSync(`${rsa}.pub`, 'utf8').trim().split(/\s+/);
    return {
      name,
      ns,
      front,
      back,
      knownHosts: addrs.map((a) => `${a} ${pub[0]} ${pub[1]}`).join('\n'),
      rsaKnownHosts: addrs.map((a) => `${a} ${rsaPub[0]} ${rsaPub[1]}`).join('\n'),
      hostKeyFingerprint: fp,
      sshdLog: log,
    };
  }

  /** Lets one more client key in (e.g. a PEM key with a passphrase). */
  authorize(publicKey: string): void {
    fs.appendFileSync(path.join(this.dir, 'authorized_keys'), `${publicKey.trim()}\n`);
  }

  get knownHosts(): string {
    return [...this.hosts.values()].map((h) => h.knownHosts).join('\n') + '\n';
  }

  host(name: string): LabHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no lab host ${name}`);
    return h;
  }

  /** Runs a command inside a host's namespace (the test's own view, not the tool's). */
  async exec(name: string, args: string[], allowFail = false): Promise<{ code: number; stdout: string; stderr: string }> {
    return sh('ip', ['netns', 'exec', this.host(name).ns, ...args], { allowFail });
  }

  /** Whether the runner could open a TCP connection to an address (it must not, for the back network). */
  static reachable(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect({ host, port, timeout: timeoutMs });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
      s.once('timeout', () => (s.destroy(), resolve(false)));
    });
  }

  async destroy(): Promise<void> {
    for (const c of this.sshds) {
      try {
        if (c.pid) process.kill(-c.pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
    for (const h of this.hosts.values()) {
      // Whatever still runs in the namespace (servers the test left) goes with it.
      await sh('sh', ['-c', `ip netns pids ${h.ns} | xargs -r kill -9`], { allowFail: true });
      await sh('ip', ['netns', 'del', h.ns], { allowFail: true });
    }
    for (const l of this.links) await sh('ip', ['link', 'del', l], { allowFail: true });
    if (this.bridge) await sh('ip', ['link', 'del', this.bridge], { allowFail: true });
    await sh('ip', ['route', 'del', 'unreachable', GUARD], { allowFail: true });
    fs.rmSync('/etc/sudoers.d/dbrepl-test', { force: true });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
