import type { EngineCapabilities } from '../names';

export const redisCapabilities: EngineCapabilities = {
  name: 'redis',
  label: 'Redis',
  defaultPort: 6379,
  envPrefix: 'REDIS',
  cascading: true,
  // A replica authenticates as the master's ACL user (or with requirepass): no login of its own needed.
  needsReplicationLogin: false,
  sameApplicationOnly: false,
  serverKeys: [],
  redact: [{ pattern: /\b(masterauth|requirepass)\s+\S+/gi, replacement: '$1 ***' }],
};
