import { CancelledError, TimeoutError } from '../errors';
import { currentSignal } from './cancel';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Thrown by a probe to stop waiting at once (the condition can no longer be met). */
export class PollAbort extends Error {}

/**
 * Calls `probe` until it returns a value other than undefined, or the time runs out.
 * Errors from the probe count as "not yet" (a server restarting refuses connections);
 * the last one is named in the timeout message; a PollAbort ends the wait at once.
 */
export async function pollUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 250, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if ((signal ?? currentSignal())?.aborted) throw new CancelledError(`stopped waiting for ${what}: the run was cancelled`);
    try {
      const v = await probe();
      if (v !== undefined) return v;
      last = '';
    } catch (err) {
      if (err instanceof PollAbort) throw err;
      last = (err as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new TimeoutError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** A keyed mutex: work under one key runs one at a time, in arrival order. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.tails.set(key, settled);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    }
  }
}
