import { DbreplError } from '../../errors';
import { bothSides, Engine } from '../engine';
import { mongodbCapabilities } from './capabilities';

/**
 * MongoDB is declared (its capabilities shape the file's rules and variables) but not
 * implemented in this version: every inspection reports that, so its pairs are
 * `unreachable` with the reason and apply leaves them alone.
 */
const unavailable = (): never => {
  throw new DbreplError('USAGE', 'the mongodb engine is not available in this version of dbrepl yet');
};

export const mongodb: Engine<never> = {
  capabilities: mongodbCapabilities,
  inspect: async () => unavailable(),
  identity: unavailable,
  copies: unavailable,
  pairState: (_pair, master, slave) => {
    const sides = bothSides(master, slave);
    return 'live' in sides ? sides.live : unavailable();
  },
  liveLinks: () => [],
  plan: unavailable,
  preflight: async () => [],
  verifyHost: async () => unavailable(),
  lockMaster: async () => unavailable(),
};
