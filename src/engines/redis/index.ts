import type { Engine } from '../engine';
import { redisCapabilities } from './capabilities';
import { inspectRedis, RedisFacts } from './inspect';
import { preflight } from './preflight';
import { identity, liveLinks, pairState } from './state';
import { plan } from './steps';

export const redis: Engine<RedisFacts> = {
  capabilities: redisCapabilities,
  inspect: inspectRedis,
  identity,
  pairState,
  liveLinks,
  plan,
  preflight,
};
