import { checkHostCanWork, isLoopback, sharedNetwork } from '../engines/engine';
import type { ActionPlan, ChangeAction, Engine, Finding, Session, Sides } from '../engines/engine';
import { messageOf } from '../errors';
import { pathExists } from '../hosts/commands';
import type { Pair } from '../model';

/**
 * The checks of one pair's action that change nothing, shared by plan (so a plan that
 * looks fine does not fail half-way) and apply (again, after its lock, before the first
 * change): the two sides are two servers by identity; nothing is at the preserved path;
 * then the engine's own checks (the locks are the protocol's: see apply/locks.ts).
 */
export async function checkAction(
  engine: Engine,
  pair: Pair,
  sides: Sides<unknown>,
  planned: { action: ChangeAction; plan: ActionPlan } | null,
  session: Session,
): Promise<Finding[]> {
  const out: Finding[] = [];
  // A socket path reaches a server from its own host only: slaves reach their master by address,
  // and a master admits a slave (pg_hba.conf, user@host) by the address it connects from.
  if (pair.master.host.startsWith('/')) out.push({ level: 'error', message: `${pair.master.ref}'s host is a socket path (${pair.master.host}); a master needs a network address its slaves reach` });
  if (pair.slave.host.startsWith('/') && engine.capabilities.needsReplicationLogin) {
    out.push({ level: 'error', message: `${pair.slave.ref}'s host is a socket path (${pair.slave.host}); ${engine.capabilities.label} admits a slave by its network address: give the address it connects from` });
  }
  if (planned) out.push(...(await hostChecks(engine, pair, planned.plan, session)));
  const same = sameServer(engine, pair, sides);
  if (same) out.push({ level: 'error', message: same });
  if (planned && (planned.plan.lockDir || planned.plan.preserved)) {
    try {
      const host = await session.hosts.forServer(pair.slave);
      if (planned.plan.preserved && (await pathExists(host, planned.plan.preserved))) {
        out.push({ level: 'error', message: `${planned.plan.preserved} already exists on ${host.label}; refusing to overwrite kept data` });
      }
    } catch (err) {
      out.push({ level: 'error', message: messageOf(err) });
    }
  }
  if (same) return out;
  try {
    out.push(...(await engine.preflight(pair, sides, planned, session)));
  } catch (err) {
    out.push({ level: 'error', message: messageOf(err) });
  }
  return out;
}

/** Two declared servers that are one server (by identity, not by address): a message naming both, or null. */
export function sameServer(engine: Engine, pair: Pair, { m, s }: Sides<unknown>): string | null {
  const a = engine.identity(m);
  const b = engine.identity(s);
  if (a.key !== b.key) return null;
  return `${pair.master.ref} (${pair.master.host}:${pair.master.port}) and ${pair.slave.ref} (${pair.slave.host}:${pair.slave.port}) are the same server (${a.text}): a server cannot be its own slave; fix the host or port of one of them`;
}

/**
 * Where the pair's programs run and what they reach: a loopback master is the slave's own
 * machine's loopback for the copy and the replication channel, so the two must share a
 * machine (likewise a PostgreSQL/MySQL slave, which its master admits by address); a host
 * dbrepl works on must let it act as the servers' users.
 */
async function hostChecks(engine: Engine, pair: Pair, plan: ActionPlan, session: Session): Promise<Finding[]> {
  const out: Finding[] = [];
  const both = await Promise.all([session.hosts.forServer(pair.master), session.hosts.forServer(pair.slave)]).catch(() => null);
  if (!both) return out;
  const [mh, sh] = both;
  const apart = !(await sharedNetwork(mh, sh).catch(() => true));
  if (apart && isLoopback(pair.master.host)) {
    out.push({ level: 'error', message: `${pair.master.ref}'s host ${pair.master.host} is a loopback address, but ${pair.slave.ref} runs on another host (${sh.label}): the copy and the replication channel would reach that machine's own loopback; give ${pair.master.ref} the address its slaves reach` });
  }
  if (apart && isLoopback(pair.slave.host) && engine.capabilities.needsReplicationLogin) {
    out.push({ level: 'error', message: `${pair.slave.ref}'s host ${pair.slave.host} is a loopback address, but its master runs on another host: ${engine.capabilities.label} admits a slave by the address it connects from; give ${pair.slave.ref} that address` });
  }
  if (plan.lockDir) {
    try {
      await checkHostCanWork(sh, pair.slave);
    } catch (err) {
      out.push({ level: 'error', message: messageOf(err) });
    }
  }
  return out;
}

/** With --force, refusals that may be overridden become warnings (said as forced); without, they stay errors naming --force. */
export function settle(findings: Finding[], force: boolean): Finding[] {
  return findings.map((f) => {
    if (f.level !== 'error' || !f.forceable) return f;
    return force ? { level: 'warning', message: `forced (--force): ${f.message}` } : { level: 'error', message: `${f.message} (--force goes ahead anyway)` };
  });
}

/** Disables the plan made without their master (unreachable, --force): apply may go ahead without it for these only. */
export const masterlessPlans = new WeakSet<object>();
