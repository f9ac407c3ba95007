import { DbreplError } from '../../errors';
import { pathExists, readFile } from '../../hosts/commands';
import type { Host } from '../../hosts/host';
import type { Pair, Server } from '../../model';
import { finding, Finding, hostOrError, Session, Sides } from '../engine';
import type { ActionPlan, ChangeAction } from '../engine';
import type { RedisFacts } from './inspect';

/** The preserved file is written where host commands run: that must be the slave's machine. */
async function verifyHost(host: Host, server: Server, facts: RedisFacts): Promise<void> {
  const comm = (await readFile(host, `/proc/${facts.processId}/comm`))?.trim();
  if (!(await pathExists(host, facts.dir)) || !comm?.startsWith('redis')) {
    throw new DbreplError('STEP', `host commands for ${server.ref} would run on ${host.label}, which does not run this server (no redis process ${facts.processId}, or no ${facts.dir}); run dbrepl on the server's own host`);
  }
}

/** Checks that change nothing: run by plan, and again by apply before the first change. */
export async function preflight(pair: Pair, { s }: Sides<RedisFacts>, planned: { action: ChangeAction; plan: ActionPlan } | null, session: Session): Promise<Finding[]> {
  if (!planned || planned.action === 'disable') return [];
  const out: Finding[] = [];
  const error = (message: string): void => void out.push({ level: 'error', message });
  if (s.role === 'master' && s.replicas.length > 0) {
    error(`${pair.slave.ref} is a master with ${s.replicas.length} replica(s) of its own; refusing to overwrite a master — fix the file or detach them first`);
  }
  const host = await hostOrError(session, pair.slave, error);
  if (host) out.push(...(await finding('error', () => verifyHost(host, pair.slave, s))));
  return out;
}
