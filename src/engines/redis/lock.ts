import { randomBytes } from 'node:crypto';
import { CancelledError, LockedError } from '../../errors';
import { describeOwner, goneHere, Owner } from '../../hosts/run-state';
import type { Server } from '../../model';
import { currentSignal, unstoppable } from '../../util/cancel';
import { sleep } from '../../util/poll';
import type { MasterLock, Session } from '../engine';
import { withClient } from './client';

export const LOCK_KEY = 'dbrepl:master-lock';
const KEY = LOCK_KEY;
/** The key expires this long after the run stops renewing it (a runner that vanished). */
const TTL_MS = 60_000;
const RENEW_MS = 20_000;
const RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
/** On a promoted slave: the copy of its former master's lock key (replicated like any key) goes. */
export const FORGET_COPY = "local v = redis.call('GET', KEYS[1]); if v and string.sub(v, 1, 7) == 'dbrepl ' then return redis.call('DEL', KEYS[1]) end return 0";
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/**
 * The run's lock on a Redis master: a key set with NX and an expiry, renewed while held and
 * deleted only by its holder. A master that is itself a replica is read-only: it cannot hold
 * the key, and the slave's lock on its host is then the only one (said in the log).
 */
export async function lockMaster(server: Server, session: Session, owner: Owner, waitMs: number, log: (m: string) => void): Promise<MasterLock> {
  // Who holds it, so that a run on the same machine can prove the holder gone (as with the slave's lock).
  const value = `dbrepl ${JSON.stringify({ ...owner, token: randomBytes(8).toString('hex') })}`;
  const deadline = Date.now() + waitMs;
  let said = false;
  for (;;) {
    if (currentSignal()?.aborted) throw new CancelledError(`stopped waiting for the lock of ${server.ref}: the run was cancelled`);
    const got = await withClient(session, server, async (r) => {
      try {
        return (await r.call('SET', KEY, value, 'NX', 'PX', TTL_MS)) === 'OK' ? 'ok' : String(await r.call('GET', KEY));
      } catch (err) {
        if (/READONLY/.test((err as Error).message)) return 'replica';
        throw err;
      }
    });
    if (got === 'replica') {
      log('is a read-only replica: no master lock key there; the slave lock alone orders runs');
      return { release: async () => undefined };
    }
    if (got === 'ok') break;
    const holder = parseOwner(got);
    const gone = holder ? goneHere(holder, owner) : null;
    if (holder && gone) {
      // Deleted only if it is still that holder's: a run taking it meanwhile keeps it.
      await withClient(session, server, (r) => r.call('EVAL', RELEASE, 1, KEY, got));
      log(`took over the master lock from ${describeOwner(holder)}: ${gone}`);
      continue;
    }
    const who = `${holder ? describeOwner(holder) : `"${got}"`} (key ${KEY})`;
    if (Date.now() >= deadline) throw new LockedError(`${server.ref} is locked by ${who}; waited ${Math.round(waitMs / 1000)} s (--lock-timeout); the key expires ${TTL_MS / 1000} s after its holder stops renewing it`);
    if (!said) log(`waiting for the master lock, held by ${who}`);
    said = true;
    await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
  }
  const renew = setInterval(() => void unstoppable(() => withClient(session, server, (r) => r.call('EVAL', RENEW, 1, KEY, value, TTL_MS))).catch(() => undefined), RENEW_MS);
  renew.unref();
  return {
    release: async () => {
      clearInterval(renew);
      await unstoppable(() => withClient(session, server, (r) => r.call('EVAL', RELEASE, 1, KEY, value))).catch(() => undefined);
    },
  };
}

function parseOwner(value: string): Owner | null {
  try {
    return value.startsWith('dbrepl {') ? (JSON.parse(value.slice(7)) as Owner) : null;
  } catch {
    return null;
  }
}
