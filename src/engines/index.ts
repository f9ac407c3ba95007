import type { EngineName } from './names';
import type { Engine } from './engine';
import { mongodb } from './mongodb';
import { mysql } from './mysql';
import { postgresql } from './postgresql';
import { redis } from './redis';

/** Every engine of SPEC section 1, behind one interface. */
const ENGINES = {
  postgresql,
  mysql,
  redis,
  mongodb,
} satisfies Record<EngineName, Engine<any>>; // eslint-disable-line @typescript-eslint/no-explicit-any -- each engine has its own facts type

export function engineFor(name: EngineName): Engine {
  return ENGINES[name] as Engine;
}
