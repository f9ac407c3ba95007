import type { Engine } from '../engine';
import { redisCapabilities } from './capabilities';
import { inspectRedis, RedisFacts } from './inspect';
import { lockMaster } from './lock';
import { preflight, verifyHost } from './preflight';
import { copies, identity, liveLinks, pairState } from './state';
import { plan } from './steps';

export const redis: Engine<RedisFacts> = {
  capabilities: redisCapabilities,
  inspect: inspectRedis,
  identity,
  copies,
  pairState,
  liveLinks,
  plan,
  preflight,
  verifyHost,
  lockMaster,
};
