import { engineFor } from './engines';
import type { Inspection, Session } from './engines/engine';
import { DbreplError, messageOf } from './errors';
import { describeInterrupted } from './apply/journal';
import { FoundCopy, listCopies, removeCopy } from './hosts/copies';
import type { Host } from './hosts/host';
import { lockState } from './apply/locks';
import type { Owner } from './hosts/run-state';
import type { Server } from './model';
import type { PreservedCopy } from './plan/types';

/** A copy found on a server's host, with what removing it needs. */
export interface CopyOnHost {
  copy: PreservedCopy;
  found: FoundCopy;
  host: Host;
  /** Proves, before a removal, that `host` runs this server (not another machine with the same layout). */
  verify: () => Promise<void>;
}

export interface CopyListing {
  copies: CopyOnHost[];
  /** Servers whose copies could not be listed, and why. */
  errors: Array<{ server: string; error: string }>;
}

/**
 * The copies of their previous data that dbrepl kept on each server's host, oldest first per
 * server; `newest` marks each server's latest. One server under two names is listed once
 * (under the first reference), by identity.
 */
export async function findCopies(servers: Server[], inspections: ReadonlyMap<string, Inspection>, session: Session, now: Date, me: Owner, each: <T>(items: T[], fn: (item: T) => Promise<void>) => Promise<void>): Promise<CopyListing> {
  const errors: CopyListing['errors'] = [];
  const seen = new Set<string>();
  const jobs: Array<{ server: Server; facts: unknown }> = [];
  for (const server of [...servers].sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0))) {
    const inspection = inspections.get(server.ref);
    if (!inspection) continue;
    if (!inspection.ok) {
      errors.push({ server: server.ref, error: `cannot inspect: ${inspection.error}` });
      continue;
    }
    const key = engineFor(server.engine).identity(inspection.facts).key;
    if (seen.has(key)) continue;
    seen.add(key);
    jobs.push({ server, facts: inspection.facts });
  }
  const byServer = new Map<string, CopyOnHost[]>();
  await each(jobs, async ({ server, facts }) => {
    try {
      const host = await session.hosts.forServer(server);
      const found = await listCopies(host, engineFor(server.engine).copies(facts));
      byServer.set(
        server.ref,
        found.map((f, i) => ({
          host,
          // The right machine, and no rebuild under way or interrupted there (its lock names a copy it may still need).
          verify: async () => {
            await engineFor(server.engine).verifyHost(host, server, facts);
            const held = await lockState(host, server, me);
            if (held) throw new DbreplError('LOCKED', `${server.ref} is locked by ${held.holder}${held.interrupted ? ` (${describeInterrupted(held.interrupted)})` : ''}: its copies are left alone while a run works on it or has work to finish`);
          },
          found: f,
          copy: {
            server: server.ref,
            path: f.path,
            bytes: f.bytes,
            created: f.created.toISOString(),
            age_seconds: Math.max(0, Math.floor((now.getTime() - f.created.getTime()) / 1000)),
            newest: i === found.length - 1,
          },
        })),
      );
    } catch (err) {
      errors.push({ server: server.ref, error: messageOf(err) });
    }
  });
  const copies = jobs.flatMap((j) => byServer.get(j.server.ref) ?? []);
  return { copies, errors: errors.sort((a, b) => (a.server < b.server ? -1 : 1)) };
}

export interface RemovalRequest {
  /** Remove every copy at least this many seconds old (never a server's newest). */
  olderThanSeconds?: number;
  /** Or exactly these paths, each of which must be a copy found above. */
  paths?: string[];
}

export interface RemovalChoice {
  chosen: CopyOnHost[];
  /** Paths that were named but are not copies dbrepl may remove, and why. */
  refused: Array<{ path: string; error: string }>;
}

/**
 * Which copies a removal takes. A server's newest copy is never taken (it is the data the
 * last rebuild replaced); a named path must be a copy dbrepl made for a declared server,
 * found by name pattern and type, never anything else on the host.
 */
export function chooseRemovals(listing: CopyListing, request: RemovalRequest): RemovalChoice {
  if (request.paths && request.paths.length > 0) {
    const chosen: CopyOnHost[] = [];
    const refused: RemovalChoice['refused'] = [];
    for (const p of request.paths) {
      const matches = listing.copies.filter((c) => c.copy.path === p.replace(/\/+$/, ''));
      if (matches.length === 0) refused.push({ path: p, error: 'not a copy dbrepl made for a server of this file (its name, place or type does not match); nothing removed' });
      else if (matches.length > 1) refused.push({ path: p, error: `found on ${matches.map((m) => m.copy.server).join(' and ')}; name one with --only` });
      else if (matches[0]!.copy.newest) refused.push({ path: p, error: `the newest copy of ${matches[0]!.copy.server} is kept: it holds what the last rebuild replaced` });
      else chosen.push(matches[0]!);
    }
    return { chosen, refused };
  }
  const limit = request.olderThanSeconds ?? Infinity;
  return { chosen: listing.copies.filter((c) => !c.copy.newest && c.copy.age_seconds >= limit), refused: [] };
}

/**
 * Removes the chosen copies; returns, per path, null or why it failed. Before removing
 * anything on a host, it proves that host runs the server the copy was listed for.
 */
export async function removeCopies(chosen: CopyOnHost[], each: <T>(items: T[], fn: (item: T) => Promise<void>) => Promise<void>): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  await each(chosen, async (c) => {
    try {
      await c.verify();
      await removeCopy(c.host, c.found);
      out.set(`${c.copy.server}\0${c.copy.path}`, null);
    } catch (err) {
      out.set(`${c.copy.server}\0${c.copy.path}`, messageOf(err));
    }
  });
  return out;
}
