import type { Engine, Logger, MasterLock, Session } from '../engines/engine';
import { CancelledError, DbreplError, LockedError } from '../errors';
import type { Host } from '../hosts/host';
import { describeOwner, goneHere, lockOp, Owner, readLock, stateDirOf } from '../hosts/run-state';
import type { Server } from '../model';
import { currentSignal } from '../util/cancel';
import { sleep } from '../util/poll';
import { describeInterrupted, Interrupted, interruptedOf, JournalRecord, parseJournal } from './journal';

/** How often a holder renews its slave lock, and after how long without renewal it counts as gone. */
export const HEARTBEAT_MS = 10_000;
export const LEASE_SECONDS = 60;

/** Why a lock's holder is gone (provably, or its lease ran out), or null while it may still work. */
export function holderGone(holder: Owner | null, heartbeatAge: number, me: Owner): string | null {
  if (!holder) return 'the lock names no owner (left half-made)';
  if (holder.abandoned) return `its run ended leaving this for the next one (${holder.abandoned})`;
  return goneHere(holder, me) ?? (heartbeatAge > LEASE_SECONDS ? `it has not renewed the lock for ${heartbeatAge} s (lease ${LEASE_SECONDS} s)` : null);
}

/**
 * One action at a time on a slave, whichever run: a lock in the slave's state directory on
 * its host, renewed while held, with the action's journal. A second run waits up to the
 * lock timeout, then fails naming the holder; a holder that is provably gone (or whose
 * lease ran out) is taken over, and its unfinished journal returned for recovery.
 */
export class SlaveLock {
  private timer: NodeJS.Timeout | undefined;
  private lostWhy: string | null = null;
  private readonly lostCtl = new AbortController();

  private constructor(
    readonly host: Host,
    readonly dir: string,
    private readonly owner: Owner,
  ) {}

  static async take(host: Host, server: Server, owner: Owner, waitMs: number, log: (m: string) => void): Promise<{ lock: SlaveLock; interrupted: Interrupted | null }> {
    const dir = await stateDirOf(host, server);
    const lock = new SlaveLock(host, dir, owner);
    const deadline = Date.now() + waitMs;
    let said = false;
    for (;;) {
      if (currentSignal()?.aborted) throw new CancelledError(`not started: the run was cancelled while waiting for the lock of ${server.ref}`);
      const ownerJson = JSON.stringify(owner);
      const got = await lockOp(host, dir, 'acquire', '', ownerJson);
      if (got.code === 0) {
        lock.startHeartbeat();
        return { lock, interrupted: null };
      }
      const held = await readLock(host, dir);
      if (!held) continue;
      const interrupted = interruptedOf(parseJournal(held.journal));
      const gone = holderGone(held.owner, held.heartbeatAge, owner);
      if (gone) {
        const taken = await lockOp(host, dir, 'takeover', held.owner?.token ?? '', ownerJson);
        if (taken.code !== 0) continue;
        log(`took over the lock of ${server.ref} from ${held.owner ? describeOwner(held.owner) : 'an unknown run'}: ${gone}${interrupted ? `; its journal: ${describeInterrupted(interrupted)}` : ''}`);
        lock.startHeartbeat();
        return { lock, interrupted };
      }
      const who = `${describeOwner(held.owner!)}, renewed ${held.heartbeatAge} s ago${interrupted ? `, doing: ${describeInterrupted(interrupted).replace(/^interrupted /, '')}` : ''}`;
      if (Date.now() >= deadline) {
        throw new LockedError(`${server.ref} is locked by ${who}; waited ${Math.round(waitMs / 1000)} s (--lock-timeout); it is released when that run ends, or taken over ${LEASE_SECONDS} s after its last renewal`);
      }
      if (!said) log(`waiting for the lock of ${server.ref}, held by ${who}`);
      said = true;
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
    }
  }

  private startHeartbeat(): void {
    this.timer = setInterval(() => {
      lockOp(this.host, this.dir, 'heartbeat', this.owner.token)
        .then((r) => {
          if (r.code === 3) this.lose('another run took the lock over (this run did not renew it in time)');
        })
        .catch(() => undefined);
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  private lose(why: string): void {
    if (this.lostWhy) return;
    this.lostWhy = why;
    this.lostCtl.abort();
  }

  /** Fires when the lock was lost: the action must stop. */
  get lostSignal(): AbortSignal {
    return this.lostCtl.signal;
  }

  get lost(): string | null {
    return this.lostWhy;
  }

  /** Appends records to the journal, in one write (one host command: a step boundary costs one). */
  async append(...records: JournalRecord[]): Promise<void> {
    const r = await lockOp(this.host, this.dir, 'journal', this.owner.token, records.map((x) => JSON.stringify(x) + '\n').join(''));
    if (r.code === 3) {
      this.lose('another run took the lock over');
      throw new DbreplError('STEP', `lost the lock of ${this.dir} on ${this.host.label}: another run took it over`);
    }
  }

  async clearJournal(): Promise<void> {
    await lockOp(this.host, this.dir, 'clearJournal', this.owner.token);
  }

  /** Releases the lock (and its journal); a lock already taken over is left to its new holder. */
  async release(): Promise<void> {
    this.stop();
    await lockOp(this.host, this.dir, 'release', this.owner.token).catch(() => undefined);
  }

  /** Stops renewing and leaves the lock and its journal for the next run, which may take it over at once (an undo failed). */
  async abandon(why: string): Promise<void> {
    this.stop();
    await lockOp(this.host, this.dir, 'takeover', this.owner.token, JSON.stringify({ ...this.owner, abandoned: why.slice(0, 300) })).catch(() => undefined);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Locks on masters, held on the master itself (PostgreSQL advisory lock, MySQL GET_LOCK,
 * Redis SET NX with renewal), one per master and run, shared by the run's pairs on that
 * master (by identity) and released when the last of them ends. Another run's actions on
 * the same master wait for it.
 */
export class MasterLocks {
  private readonly held = new Map<string, { count: number; lock: Promise<MasterLock> }>();

  constructor(
    private readonly owner: Owner,
    private readonly waitMs: number,
    private readonly log: Logger,
  ) {}

  async take(engine: Engine, server: Server, key: string, session: Session): Promise<() => Promise<void>> {
    let entry = this.held.get(key);
    if (!entry) {
      entry = { count: 0, lock: engine.lockMaster(server, session, this.owner, this.waitMs, (m) => this.log.info(`${server.ref}: ${m}`)) };
      this.held.set(key, entry);
      entry.lock.catch(() => this.held.delete(key));
    }
    entry.count++;
    const lock = await entry.lock.catch((err: unknown) => {
      entry!.count--;
      throw err;
    });
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      if (--entry!.count === 0) {
        this.held.delete(key);
        await lock.release().catch(() => undefined);
      }
    };
  }
}

/** A slave's lock as a plan or a removal sees it (read only). */
export interface LockState {
  /** Who holds it, for messages. */
  holder: string;
  /** Why the holder counts as gone (its lock is taken over by the next apply), or null while it may work. */
  gone: string | null;
  /** An action it left half-done (rolled back by the next apply). */
  interrupted: Interrupted | null;
}

export async function lockState(host: Host, server: Server, me: Owner): Promise<LockState | null> {
  const held = await readLock(host, await stateDirOf(host, server));
  if (!held) return null;
  return {
    holder: held.owner ? `${describeOwner(held.owner)}, renewed ${held.heartbeatAge} s ago` : 'an unknown run',
    gone: holderGone(held.owner, held.heartbeatAge, me),
    interrupted: interruptedOf(parseJournal(held.journal)),
  };
}
