import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The cancellation of a run, carried through every await of the work done under it: the
 * steps of an action run inside `underSignal`, so a host command, a wait or a database
 * query started by any of them is stopped when the run is cancelled, without each call
 * passing it on. Undo work runs `unstoppable`: a rollback is never cut short by the signal
 * that asked for it.
 */
const scope = new AsyncLocalStorage<AbortSignal | null>();

export function underSignal<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  return signal ? scope.run(signal, fn) : fn();
}

export function unstoppable<T>(fn: () => Promise<T>): Promise<T> {
  return scope.run(null, fn);
}

/** The signal of the work in progress, if it can be cancelled. */
export function currentSignal(): AbortSignal | undefined {
  return scope.getStore() ?? undefined;
}

/** Calls `stop` when the work in progress is cancelled (a connection to cut); returns the unsubscribe. */
export function onCancel(stop: () => void): () => void {
  const signal = currentSignal();
  if (!signal) return () => undefined;
  if (signal.aborted) {
    stop();
    return () => undefined;
  }
  signal.addEventListener('abort', stop, { once: true });
  return () => signal.removeEventListener('abort', stop);
}
