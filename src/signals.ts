/**
 * A cancelled workflow run sends SIGINT, then SIGTERM, then kills the process after a short
 * grace: the first signal stops the running steps and rolls back what they started (the
 * run then releases its locks and writes its report); later ones only say that the rollback
 * is under way. What cannot be undone in time stays in the slave's journal for the next run.
 */
export function cancellation(write: (s: string) => void): AbortSignal {
  const ctl = new AbortController();
  const on = (sig: NodeJS.Signals): void => {
    if (!ctl.signal.aborted) write(`dbrepl: ${sig}: stopping the running steps and rolling back what they started; locks are released, the report follows\n`);
    else write(`dbrepl: ${sig}: still rolling back; what is not undone stays in the slave's journal for the next run\n`);
    ctl.abort();
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return ctl.signal;
}
