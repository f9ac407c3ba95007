import type { Engine } from '../engine';
import { disable, enable } from './apply';
import { inspectRedis, RedisFacts } from './inspect';
import { describe, liveLinks, pairState } from './state';

export const redis: Engine<RedisFacts> = {
  name: 'redis',
  inspectServer: inspectRedis,
  pairState,
  describe,
  liveLinks,
  enable,
  disable,
};
