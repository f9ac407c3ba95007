import * as tls from 'node:tls';
import { pathExists, runChecked } from '../hosts/commands';
import { ownerOfDirectory, writeFile } from '../hosts/files';
import type { Host, RunAs } from '../hosts/host';
import type { Pair, Server } from '../model';
import type { Step } from './engine';

/**
 * Node TLS options for the tool's own connection to a server, per its `tls` setting:
 * `require` encrypts without checking the certificate; `verify-full` checks the chain (the
 * file's CA, else the system's) and that the certificate names the server's host — the
 * host of the file, also when the connection goes through an SSH tunnel to 127.0.0.1.
 * Null when the server has no `tls` (or `mode: disable`).
 */
export function nodeTls(server: Server): tls.ConnectionOptions | null {
  const t = server.tls;
  if (!t || t.mode === 'disable') return null;
  const client = t.cert && t.key ? { cert: t.cert, key: t.key } : {};
  if (t.mode === 'require') return { ...client, rejectUnauthorized: false };
  return {
    ...client,
    ...(t.ca ? { ca: t.ca } : {}),
    rejectUnauthorized: true,
    servername: isIpLiteral(server.host) ? undefined : server.host,
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(server.host, cert),
  };
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** How a pair's replication channel travels: the master's TLS mode, or none. */
export function replicationTls(master: Server): 'verify-full' | 'require' | 'none' {
  const m = master.tls?.mode;
  return m === 'verify-full' || m === 'require' ? m : 'none';
}

/** Whether the tool's connection to a server leaves its host unencrypted (no SSH tunnel, no TLS, not loopback). */
export function plainOverNetwork(server: Server): boolean {
  if (server.ssh || (server.tls && server.tls.mode !== 'disable')) return false;
  return !/^(127\.|localhost$|::1$|\/)/.test(server.host);
}

/** A master's CA and client certificate as files on a slave's host (for its server and the copy programs). */
export interface TlsFiles {
  dir: string;
  ca?: string;
  cert?: string;
  key?: string;
}

/** Next to the slave's data directory (`<base>.dbrepl-tls/`), one set per master. Pure: the plan names them. */
export function tlsFilesFor(base: string, master: Server): TlsFiles {
  const dir = `${base.replace(/\/+$/, '')}.dbrepl-tls`;
  const name = master.ref.replace(/[^a-z0-9-]/g, '_');
  const t = master.tls;
  return {
    dir,
    ca: t?.ca ? `${dir}/${name}.ca.crt` : undefined,
    cert: t?.cert ? `${dir}/${name}.client.crt` : undefined,
    key: t?.key ? `${dir}/${name}.client.key` : undefined,
  };
}

/**
 * Writes them where the slave's server can read them: a directory of its own (mode 700),
 * files owned by the data directory's owner (mode 600; libpq refuses a readable key).
 */
export async function writeTlsFiles(host: Host, files: TlsFiles, master: Server, owner: RunAs): Promise<string[]> {
  const parent = await ownerOfDirectory(host, files.dir);
  await runChecked(host, ['mkdir', '-p', '-m', '700', '--', files.dir], `creating ${files.dir}`, { as: parent });
  if (!parent) await runChecked(host, ['chown', '-h', `${owner.uid}:${owner.gid}`, '--', files.dir], `giving ${files.dir} to the server's user`);
  const t = master.tls!;
  const created: string[] = [];
  for (const [file, pem] of [[files.ca, t.ca], [files.cert, t.cert], [files.key, t.key]] as const) {
    if (!file || !pem) continue;
    if (!(await pathExists(host, file))) created.push(file);
    await writeFile(host, file, pem.endsWith('\n') ? pem : `${pem}\n`, { owner, mode: '600', reown: true });
  }
  return created;
}

/** Removes TLS files dbrepl wrote (a client key never stays where nothing uses it). */
export async function removeTlsFiles(host: Host, files: string[]): Promise<void> {
  if (files.length > 0) await runChecked(host, ['rm', '-f', '--', ...files], 'removing TLS files');
}

/** The files of a set, for removal. */
export function tlsFileList(files: TlsFiles | null): string[] {
  return files ? [files.ca, files.cert, files.key].filter((f): f is string => !!f) : [];
}

/** On disable: the step removing the master's TLS files from the slave host (none when replication was plain). */
export function forgetTlsSteps(pair: Pair, base: string): Step[] {
  const files = tlsFileList(replicationTls(pair.master) === 'none' ? null : tlsFilesFor(base, pair.master));
  if (files.length === 0) return [];
  return [
    {
      id: 'forget-tls',
      side: 'slave host',
      title: "remove the master's TLS files",
      text: `slave host: remove ${files.join(', ')} (nothing uses them once it is standalone)`,
      run: async (session) => removeTlsFiles(await session.hosts.forServer(pair.slave), files),
    },
  ];
}
