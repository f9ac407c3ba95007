import type { Engine } from '../engine';
import { disable, enable } from './apply';
import { inspectPostgres, PgFacts } from './inspect';
import { describe, liveLinks, pairState } from './state';

export const postgresql: Engine<PgFacts> = {
  name: 'postgresql',
  inspectServer: inspectPostgres,
  pairState,
  describe,
  liveLinks,
  enable,
  disable,
};
