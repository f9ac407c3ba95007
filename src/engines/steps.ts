import { StepError, messageOf } from '../errors';
import type { ApplyContext } from './engine';

/** Bound on a user's service command line (stop/start), so a hung init script cannot hang the run. */
export const SERVICE_TIMEOUT_S = 300;

/** Runs one named step, logging its duration; any failure becomes a StepError naming it. */
export async function step<T>(ctx: ApplyContext, name: string, fn: () => Promise<T>): Promise<T> {
  ctx.log.info(`  ${name}`);
  const started = Date.now();
  try {
    const out = await fn();
    ctx.log.info(`    done in ${((Date.now() - started) / 1000).toFixed(2)} s`);
    return out;
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new StepError(name, messageOf(err), { cause: err });
  }
}

/** A service command line from the file, bounded in time. */
export function serviceArgv(line: string): string[] {
  return ['timeout', String(SERVICE_TIMEOUT_S), '/bin/sh', '-c', line];
}
