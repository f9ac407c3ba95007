import { CancelledError, LockedError } from '../../errors';
import { currentSignal } from '../../util/cancel';
import type { Owner } from '../../hosts/run-state';
import type { Server } from '../../model';
import { sleep } from '../../util/poll';
import type { MasterLock, Session } from '../engine';
import { openClient } from './client';

/** The advisory lock's two keys: 'dbrp' and 1, the same on every master. */
const KEYS = [0x64627270, 1] as const;

/**
 * The run's lock on a PostgreSQL master: a session advisory lock, held by a connection of
 * its own (application_name says whose). It goes with the session: a run that dies loses
 * it as soon as the server sees the connection gone, which the keepalives below bound to
 * about a minute even when the runner vanished without closing it.
 */
export async function lockMaster(server: Server, session: Session, owner: Owner, waitMs: number, log: (m: string) => void): Promise<MasterLock> {
  // application_name is cut at 63 bytes by the server.
  const client = await openClient(session, server, undefined, `dbrepl ${owner.run} pid ${owner.pid} on ${owner.host}`.slice(0, 63));
  client.on('error', () => undefined);
  try {
    for (const setting of ['tcp_keepalives_idle = 20', 'tcp_keepalives_interval = 5', 'tcp_keepalives_count = 4']) await client.query(`SET ${setting}`).catch(() => undefined);
    const deadline = Date.now() + waitMs;
    let said = false;
    for (;;) {
      if (currentSignal()?.aborted) throw new CancelledError(`stopped waiting for the lock of ${server.ref}: the run was cancelled`);
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [...KEYS]);
      if (rows[0]?.ok) break;
      const holder = await client
        .query<{ application_name: string; client_addr: string | null; backend_start: string }>(
          `SELECT a.application_name, host(a.client_addr) AS client_addr, a.backend_start::text AS backend_start
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.granted`,
          [...KEYS],
        )
        .then((r) => r.rows[0]);
      const who = holder ? `"${holder.application_name}" (from ${holder.client_addr ?? 'a local socket'}, connected ${holder.backend_start})` : 'another session';
      if (Date.now() >= deadline) throw new LockedError(`${server.ref} is locked by ${who}; waited ${Math.round(waitMs / 1000)} s (--lock-timeout)`);
      if (!said) log(`waiting for the master lock, held by ${who}`);
      said = true;
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
    }
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return {
    release: async () => {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [...KEYS]).catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}
