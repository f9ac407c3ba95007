import type { EngineName } from '../config/schema';
import type { Engine } from './engine';
import { mysql } from './mysql';
import { postgresql } from './postgresql';
import { redis } from './redis';

/**
 * The engines this build carries. An engine not yet implemented gets no entry: its pairs
 * are reported as `unreachable` with a message that says so, and apply leaves them alone.
 */
const ENGINES: Partial<Record<EngineName, Engine>> = {
  postgresql: postgresql as Engine,
  mysql: mysql as Engine,
  redis: redis as Engine,
};

export function engineFor(name: EngineName): Engine | undefined {
  return ENGINES[name];
}

export function unsupportedMessage(name: EngineName): string {
  return `the ${name} engine is not available in this version of dbrepl yet`;
}
