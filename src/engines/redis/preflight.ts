import { DbreplError } from '../../errors';
import { pathExists, readFile } from '../../hosts/commands';
import type { Host } from '../../hosts/host';
import type { Pair, Server } from '../../model';
import { finding, Finding, hostOrError, Session, Sides } from '../engine';
import type { ActionPlan, ChangeAction } from '../engine';
import { parseInfo, withClient } from './client';
import type { RedisFacts } from './inspect';
import { masterLogin } from './steps';
import { replicationTls } from '../tls';
import { highestRate, sampleRate } from '../retention';
import { bufferRefusal, syncWarnings } from './state';

/** The preserved file is written where host commands run: that must be the slave's machine. */
export async function verifyHost(host: Host, server: Server, facts: RedisFacts): Promise<void> {
  const comm = (await readFile(host, `/proc/${facts.processId}/comm`))?.trim();
  if (!(await pathExists(host, facts.dir)) || !comm?.startsWith('redis')) {
    throw new DbreplError('STEP', `host commands for ${server.ref} would run on ${host.label}, which does not run this server (no redis process ${facts.processId}, or no ${facts.dir}); run dbrepl on the server's own host`);
  }
}

/** Checks that change nothing: run by plan, and again by apply before the first change. */
export async function preflight(pair: Pair, { m, s }: Sides<RedisFacts>, planned: { action: ChangeAction; plan: ActionPlan } | null, session: Session): Promise<Finding[]> {
  if (planned?.action === 'disable' && pair.fence) {
    // A Redis master has no read-only mode that lasts: CLIENT PAUSE ends, an ACL change is the application's.
    return [{ level: 'error', message: `fence is not available for Redis: a Redis master cannot be made read-only for good; stop the writers of ${pair.master.ref} (or take fence off the pair) and disable again` }];
  }
  if (!planned || planned.action === 'disable') return [];
  const out: Finding[] = [];
  const error = (message: string): void => void out.push({ level: 'error', message });
  if (s.role === 'master' && s.replicas.length > 0) {
    error(`${pair.slave.ref} is a master with ${s.replicas.length} replica(s) of its own; refusing to overwrite a master — fix the file or detach them first`);
  }
  if (replicationTls(pair.master) !== 'none') {
    if (!pair.master.tls?.ca && !s.tlsCaCertFile) {
      error(`a Redis replica always verifies its master's certificate chain, whatever tls.mode says: give ${pair.master.ref} a tls.ca (or ${pair.slave.ref} a tls-ca-cert-file that trusts it)`);
    }
    if (!s.tlsCertFile) {
      error(`${pair.master.ref} serves replication over TLS, and Redis replicates over TLS only from a server with TLS of its own: set tls-cert-file and tls-key-file on ${pair.slave.ref} first`);
    } else if (s.tlsCaCertFile && pair.master.tls?.ca) {
      out.push({ level: 'warning', message: `${pair.slave.ref} has a tls-ca-cert-file of its own (${s.tlsCaCertFile}), which is kept: it must trust ${pair.master.ref}'s certificate (Redis has one CA setting for its clients and its master)` });
    }
  }
  const host = await hostOrError(session, pair.slave, error);
  if (host) out.push(...(await finding('error', () => verifyHost(host, pair.slave, s))));
  out.push(...(await finding('error', () => checkLogin(session, pair))));
  const rate = await replicationRate(session, pair).catch(() => null);
  const refusal = bufferRefusal(pair, m, rate);
  if (refusal) out.push({ level: 'error', message: refusal, forceable: true });
  out.push(...syncWarnings(pair, m, rate).map((message) => ({ level: 'warning' as const, message })));
  return out;
}

/**
 * The master's replication stream, bytes/s: master_repl_offset read twice a second apart (it
 * moves with every write once the master has a backlog), or else Redis's own input rate
 * (instantaneous_input_kbps: reads included, so it overstates).
 */
async function replicationRate(session: Session, pair: Pair): Promise<number | null> {
  return withClient(session, pair.master, async (redis) => {
    const read = async (): Promise<Record<string, string>> => parseInfo(String(await redis.call('INFO', 'replication')));
    const first = await read();
    if (first.repl_backlog_active === '1') {
      return sampleRate(async () => Number((await read()).master_repl_offset ?? NaN) || null);
    }
    const stats = parseInfo(String(await redis.call('INFO', 'stats')));
    return highestRate(stats.instantaneous_input_kbps === undefined ? null : Number(stats.instantaneous_input_kbps) * 1024);
  });
}

/** The login the slave will use at the master works (a wrong replication password is found now, not after REPLICAOF). */
async function checkLogin(session: Session, pair: Pair): Promise<void> {
  const login = await masterLogin(session, pair);
  try {
    await withClient(session, { ...pair.master, user: login.user, password: login.password }, async (r) => r.call('PING'));
  } catch (err) {
    throw new DbreplError('STEP', `the login ${pair.slave.ref} would use at ${pair.master.ref} (${login.user ?? 'default'}) does not work: ${(err as Error).message.replace(/^[^:]+: /, '')}; fix the pair's replication password or the master's ACL user`);
  }
}
