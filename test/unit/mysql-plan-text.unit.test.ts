/**
 * What the plan says is what runs, for every flavour and version of the dialect table
 * (MySQL 8.0 before and after 8.0.22/8.0.23/8.0.26, 8.2+, 8.4, MariaDB): the step texts of
 * enable and disable are checked against the statements of that version, and the
 * statements the steps send are recorded and each found in its step's text. No server is
 * involved here (the connection module records statements and answers nothing); what the
 * statements do is exercised live against MariaDB in test/integration.
 */
import type { RowDataPacket } from 'mysql2/promise';
import type { Session } from '../../src/engines/engine';
import { stepText } from '../../src/engines/engine';
import { dialectFor, parseVersion } from '../../src/engines/mysql/dialect';
import type { MyFacts } from '../../src/engines/mysql/inspect';
import { plan } from '../../src/engines/mysql/steps';
import { stepLines } from '../../src/plan/diff';
import { pair, server } from './helpers/build';

const sent: string[] = [];
jest.mock('../../src/engines/mysql/client', () => ({
  withClient: async (_session: unknown, _server: unknown, fn: (sql: { query: (q: string) => Promise<RowDataPacket[]> }) => Promise<unknown>) =>
    fn({
      query: async (q: string) => {
        sent.push(q);
        return [];
      },
    }),
}));

const VERSIONS = ['10.5.0-MariaDB', '10.11.19-MariaDB', '8.0.0', '8.0.21', '8.0.22', '8.0.23', '8.0.25', '8.0.26', '8.2.0', '8.4.3'];
const M = server('shop/db-main', { engine: 'mysql', host: '10.0.1.5' });
const S = server('shop-dr/db', { engine: 'mysql', host: '10.9.0.5' });
const P = pair(M, S, { replication: { user: 'replicator', password: 'pw' } });
const session = { hosts: {}, log: { info: () => undefined, warn: () => undefined } } as unknown as Session;

function facts(version: string, over: Partial<MyFacts> = {}): MyFacts {
  const v = parseVersion(version);
  return {
    version: v, serverId: 1, logBin: true, gtidMode: v.flavour === 'mysql' ? 'ON' : null, readOnly: false, superReadOnly: v.flavour === 'mysql' ? false : null,
    datadir: '/var/lib/mysql', pidFile: '/run/mysqld/mysqld.pid', executedGtids: '', binlogFile: 'mysql-bin.000001', binlogPos: 4, replica: null,
    dumpClients: [], currentUser: 'admin@%', hostname: 'db', port: 3306, serverUuid: null, gtidSlavePos: '', linkTiming: null, userSchemas: 1, ...over,
  };
}

/** A statement without its values: placeholders, quoted values and numbers all become `?`. */
const skeleton = (sql: string): string => sql.replace(/'(?:[^']|'')*'|\b\d+\b/g, '?').replace(/(\w+) = /g, '$1=');

describe.each(VERSIONS)('%s', (version) => {
  const d = dialectFor(parseVersion(version));
  const m = facts(version, { serverId: 1 });
  const s = facts(version, { serverId: 2, hostname: 'db-dr' });
  const enable = plan(P, 'enable', { m, s }, '20261126T000000000Z');
  const text = stepLines(enable).join('\n');
  const disable = stepLines(plan(P, 'disable', { m, s }, '20261126T000000000Z')).join('\n');

  test('enable names the statements of this version', () => {
    const change = d.changeSource({ host: 'h', port: 1, user: 'u', password: 'p' }).sql;
    expect(text).toContain(change.split(' ').slice(0, change.startsWith('CHANGE REPLICATION') ? 4 : 3).join(' '));
    for (const [, key] of change.matchAll(/(\w+) = /g)) expect(text).toContain(`${key}=`);
    expect(text).not.toContain("'pw'");
    for (const q of [d.startReplica, d.stopReplica, d.resetReplicaAll, d.resetBinlogs, d.disableEventOnReplica, ...d.readOnly(true), d.dumpProgram, d.clientProgram]) expect(text).toContain(q);
    if (d.superReadOnly) expect(text).toContain(d.superReadOnly);
    expect(text).toContain(d.dumpArgs.find((a) => /^--(master|source)-data/.test(a))!);
    expect(text).toContain(d.waitForGtids.replace(/^SELECT (\w+)\(.*$/, '$1'));
    if (d.version.flavour === 'mysql' && d.version.minor >= 4) {
      expect(text).not.toMatch(/CHANGE MASTER|START SLAVE|STOP SLAVE|RESET SLAVE|RESET MASTER|SHOW MASTER|--master-data|\bON SLAVE/);
    }
  });

  test('disable names the statements of this version', () => {
    for (const q of [d.stopReplica, d.resetReplicaAll, ...d.readOnly(false)]) expect(disable).toContain(q);
    expect(disable).toContain(d.waitForGtids.replace(/^SELECT (\w+)\(.*$/, '$1'));
  });

  test('every statement the steps send is in their text', async () => {
    const steps = [...enable.steps, ...plan(P, 'disable', { m, s }, 'x').steps].filter((st) => ['replication-user', 'empty', 'follow', 'detach'].includes(st.id) || (st.id === 'settings' && !d.needsOptionsFile));
    expect(steps.length).toBeGreaterThanOrEqual(d.needsOptionsFile ? 4 : 5);
    for (const step of steps) {
      sent.length = 0;
      await step.run(session);
      // Session settings and the per-object statements (one per database or event) are described, not listed.
      const named = sent.filter((q) => !/^(SET SESSION|SELECT|SHOW|DROP DATABASE|ALTER EVENT)/.test(q));
      expect(named.length).toBeGreaterThan(0);
      for (const q of named) expect(skeleton(stepText(step))).toContain(skeleton(q));
    }
  });
});
