import * as fs from 'node:fs';
import * as path from 'node:path';
import { sh } from './sh';

/**
 * Certificates made by the tests with openssl: a CA, and server certificates it signs for
 * given names/addresses (subjectAltName), as an operator's PKI would issue them.
 */
export interface Pem {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

async function keyAndCsr(dir: string, name: string, cn: string): Promise<{ key: string; csr: string }> {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  await sh('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  return { key, csr };
}

export async function makeCa(dir: string, name = 'ca'): Promise<Pem> {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.crt`);
  await sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '3', '-subj', `/CN=dbrepl test ${name}`]);
  return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8'), certFile, keyFile };
}

/** A certificate signed by `ca` for these IP addresses and DNS names. */
export async function issue(dir: string, ca: Pem, name: string, names: string[]): Promise<Pem> {
  const { key, csr } = await keyAndCsr(dir, name, names[0] ?? name);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, `subjectAltName=${names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}\n`);
  const certFile = path.join(dir, `${name}.crt`);
  await sh('openssl', ['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '3', '-extfile', ext]);
  return { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(key, 'utf8'), certFile, keyFile: key };
}

/** Copies a certificate and its key where a server running as `user` reads them (key 0600). */
export async function installFor(user: string, into: string, pem: Pem, ca?: Pem): Promise<{ cert: string; key: string; ca?: string }> {
  const cert = path.join(into, 'server.crt');
  const key = path.join(into, 'server.key');
  fs.copyFileSync(pem.certFile, cert);
  fs.copyFileSync(pem.keyFile, key);
  fs.chmodSync(key, 0o600);
  const files = [cert, key];
  let caFile: string | undefined;
  if (ca) {
    caFile = path.join(into, 'ca.crt');
    fs.copyFileSync(ca.certFile, caFile);
    files.push(caFile);
  }
  await sh('chown', [`${user}:${user}`, ...files]);
  return { cert, key, ca: caFile };
}
