import type { EngineCapabilities } from '../names';

export const postgresqlCapabilities: EngineCapabilities = {
  name: 'postgresql',
  label: 'PostgreSQL',
  defaultPort: 5432,
  envPrefix: 'POSTGRESQL',
  cascading: true,
  needsReplicationLogin: true,
  sameApplicationOnly: false,
  serverKeys: ['data_dir', 'follow_symlinks'],
  // libpq echoes conninfo strings in some errors; SCRAM verifiers are password equivalents.
  redact: [
    { pattern: /password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/gi, replacement: 'password=***' },
    { pattern: /SCRAM-SHA-256\$[^\s']+/g, replacement: 'SCRAM-SHA-256$***' },
  ],
};
