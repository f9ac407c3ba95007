import { randomBytes } from 'node:crypto';
import type { Document } from 'mongodb';
import { CancelledError, LockedError } from '../../errors';
import { describeOwner, goneHere, Owner } from '../../hosts/run-state';
import type { Server } from '../../model';
import { currentSignal, unstoppable } from '../../util/cancel';
import { sleep } from '../../util/poll';
import type { MasterLock, Session } from '../engine';
import { codeOf, withClient } from './client';

export const DB = 'dbrepl';
export const COLL = 'locks';
export const ID = 'master';
/** The lock is another run's to take this long after its holder stops renewing it (a runner that vanished). */
const TTL_MS = 60_000;
const RENEW_MS = 20_000;

/**
 * The run's lock on a MongoDB master: a document `{_id: "master"}` in `dbrepl.locks` on the
 * master, inserted (a duplicate key means another run holds it), naming its owner, renewed
 * while held and deleted only by its holder (its token). It is taken over when its owner is
 * provably gone or it was not renewed for a minute. A master that takes no writes (a
 * secondary, a member not initiated) cannot hold it: the slave's lock alone orders runs.
 */
export async function lockMaster(server: Server, session: Session, owner: Owner, waitMs: number, log: (m: string) => void): Promise<MasterLock> {
  const token = randomBytes(8).toString('hex');
  let now = Date.now();
  const deadline = Date.now() + waitMs;
  let said = false;
  for (;;) {
    if (currentSignal()?.aborted) throw new CancelledError(`stopped waiting for the lock of ${server.ref}: the run was cancelled`);
    const got = await withClient(session, server, async (db) => {
      const hello = await db.command({ hello: 1 });
      if (hello.isWritablePrimary !== true) return 'read-only' as const;
      // The server's clock, not this runner's: expiry is judged by one clock whoever holds the lock.
      now = new Date(hello.localTime as Date).getTime();
      const r = await db.command({ insert: COLL, documents: [{ _id: ID, owner, token, renewed: new Date(now) }] }, DB);
      if (!(r.writeErrors as Document[] | undefined)?.length) return 'ok' as const;
      if ((r.writeErrors as Document[])[0]!.code !== 11000) throw new Error(String((r.writeErrors as Document[])[0]!.errmsg));
      const found = await db.command({ find: COLL, filter: { _id: ID }, limit: 1 }, DB);
      return ((found.cursor?.firstBatch as Document[] | undefined)?.[0] ?? null) as Document | null;
    }).catch((err: unknown) => {
      if (codeOf(err) === 10107) return 'read-only' as const;
      throw err;
    });
    if (got === 'read-only') {
      log('takes no writes (not a primary): no master lock there; the slave lock alone orders runs');
      return { release: async () => undefined };
    }
    if (got === 'ok') break;
    if (got === null) continue;
    const holder = got.owner as Owner;
    const stale = now - new Date(got.renewed as Date).getTime() > TTL_MS;
    const gone = goneHere(holder, owner) ?? (stale ? `not renewed for over ${TTL_MS / 1000} s` : null);
    if (gone) {
      // Deleted only if it is still that holder's: a run taking it meanwhile keeps it.
      await withClient(session, server, (db) => db.command({ delete: COLL, deletes: [{ q: { _id: ID, token: got.token }, limit: 1 }] }, DB));
      log(`took over the master lock from ${describeOwner(holder)}: ${gone}`);
      continue;
    }
    const who = `${describeOwner(holder)} (${DB}.${COLL} on ${server.ref})`;
    if (Date.now() >= deadline) throw new LockedError(`${server.ref} is locked by ${who}; waited ${Math.round(waitMs / 1000)} s (--lock-timeout); it is free ${TTL_MS / 1000} s after its holder stops renewing it`);
    if (!said) log(`waiting for the master lock, held by ${who}`);
    said = true;
    await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
  }
  const renew = setInterval(
    () =>
      void unstoppable(() =>
        withClient(session, server, async (db) => {
          const at = new Date((await db.command({ hello: 1 })).localTime as Date);
          await db.command({ update: COLL, updates: [{ q: { _id: ID, token }, u: { $set: { renewed: at } } }] }, DB);
        }),
      ).catch(() => undefined),
    RENEW_MS,
  );
  renew.unref();
  return {
    release: async () => {
      clearInterval(renew);
      await unstoppable(() => withClient(session, server, (db) => db.command({ delete: COLL, deletes: [{ q: { _id: ID, token }, limit: 1 }] }, DB))).catch(() => undefined);
    },
  };
}
