/**
 * What the plan says about encryption, per pair: the replication channel travels with the
 * master's TLS mode (or none), and dbrepl's own connections are plain only without SSH, TLS
 * and loopback.
 */
import { encryptionWarnings } from '../../src/plan/diff';
import { nodeTls, replicationTls } from '../../src/engines/tls';
import { pair, server } from './helpers/build';

const M = server('shop/pg-main', { host: '10.0.1.5' });
const S = server('shop-dr/pg', { host: '10.9.0.5' });
const ssh = { host: '203.0.113.5', known_hosts: 'x' };

test('no TLS, no SSH, over the network: both the replication channel and the tool\'s connections are named', () => {
  expect(encryptionWarnings(pair(M, S))).toEqual([
    'replication traffic from shop/pg-main to shop-dr/pg is not encrypted: give shop/pg-main a tls setting (mode require or verify-full)',
    "dbrepl's own connection to shop/pg-main (10.0.1.5:5432) is not encrypted: it has neither ssh nor tls",
    "dbrepl's own connection to shop-dr/pg (10.9.0.5:5432) is not encrypted: it has neither ssh nor tls",
  ]);
});

test('SSH covers the tool\'s connections, not replication; TLS on the master covers replication', () => {
  expect(encryptionWarnings(pair({ ...M, ssh }, { ...S, ssh }))).toEqual([expect.stringMatching(/^replication traffic from shop\/pg-main to shop-dr\/pg is not encrypted/)]);
  const tlsM = { ...M, ssh, tls: { mode: 'verify-full' as const, ca: 'PEM' } };
  expect(encryptionWarnings(pair(tlsM, { ...S, ssh }))).toEqual([]);
  expect(replicationTls(tlsM)).toBe('verify-full');
  expect(replicationTls({ ...M, tls: { mode: 'disable' } })).toBe('none');
});

test('loopback and disabled pairs say nothing about replication', () => {
  expect(encryptionWarnings(pair(server('a/m', { host: '127.0.0.1' }), server('a/s', { host: 'localhost' })))).toEqual([]);
  expect(encryptionWarnings(pair({ ...M, ssh }, { ...S, ssh }, { desired: 'disabled' }))).toEqual([]);
});

test('TLS options: require does not verify; verify-full checks the file\'s host whatever address the socket has', () => {
  expect(nodeTls(M)).toBeNull();
  expect(nodeTls({ ...M, tls: { mode: 'require' } })).toEqual({ rejectUnauthorized: false });
  const full = nodeTls({ ...M, host: 'db.example', tls: { mode: 'verify-full', ca: 'CA-PEM', cert: 'C', key: 'K' } })!;
  expect(full).toMatchObject({ ca: 'CA-PEM', cert: 'C', key: 'K', rejectUnauthorized: true, servername: 'db.example' });
  // A certificate for another name is refused even though the connection went to 127.0.0.1 (a tunnel).
  const cert = { subject: { CN: 'other.example' }, subjectaltname: 'DNS:other.example' } as never;
  expect(String(full.checkServerIdentity!('127.0.0.1', cert))).toMatch(/db\.example/);
  expect(full.checkServerIdentity!('127.0.0.1', { subject: { CN: 'db.example' }, subjectaltname: 'DNS:db.example' } as never)).toBeUndefined();
});
