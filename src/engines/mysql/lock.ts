import type { RowDataPacket } from 'mysql2/promise';
import { CancelledError, LockedError } from '../../errors';
import type { Owner } from '../../hosts/run-state';
import type { Server } from '../../model';
import { currentSignal } from '../../util/cancel';
import { sleep } from '../../util/poll';
import type { MasterLock, Session } from '../engine';
import { openConnection } from './client';

const NAME = 'dbrepl-master';
/** The session ends this long after the run stops talking to it (a runner that vanished): the lock with it. */
const IDLE_S = 90;
const PING_MS = 20_000;

/**
 * The run's lock on a MySQL/MariaDB master: GET_LOCK on a connection of its own. It goes
 * with the session, which the server ends IDLE_S after the run stops pinging it.
 */
export async function lockMaster(server: Server, session: Session, _owner: Owner, waitMs: number, log: (m: string) => void): Promise<MasterLock> {
  const conn = await openConnection(session, server);
  let ping: NodeJS.Timeout | undefined;
  try {
    await conn.query(`SET SESSION wait_timeout = ${IDLE_S}`);
    const deadline = Date.now() + waitMs;
    let said = false;
    for (;;) {
      if (currentSignal()?.aborted) throw new CancelledError(`stopped waiting for the lock of ${server.ref}: the run was cancelled`);
      const [rows] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS ok', [NAME]);
      if (Number(rows[0]?.ok) === 1) break;
      const [held] = await conn.query<RowDataPacket[]>(
        'SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.TIME AS time FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK(?)',
        [NAME],
      );
      const h = held[0];
      // MySQL keeps no name for a session: the holder is told by its connection and login.
      const who = h ? `connection ${h.id} of ${h.user}@${h.host} (idle ${h.time} s; see SHOW PROCESSLIST)` : 'another session';
      if (Date.now() >= deadline) throw new LockedError(`${server.ref} is locked by ${who}; waited ${Math.round(waitMs / 1000)} s (--lock-timeout)`);
      if (!said) log(`waiting for the master lock, held by ${who}`);
      said = true;
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
    }
    ping = setInterval(() => void conn.query('SELECT 1').catch(() => undefined), PING_MS);
    ping.unref();
  } catch (err) {
    conn.destroy();
    throw err;
  }
  return {
    release: async () => {
      clearInterval(ping);
      await conn.query('SELECT RELEASE_LOCK(?)', [NAME]).catch(() => undefined);
      await conn.end().catch(() => conn.destroy());
    },
  };
}
