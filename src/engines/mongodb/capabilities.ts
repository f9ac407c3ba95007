import type { EngineCapabilities } from '../names';

export const mongodbCapabilities: EngineCapabilities = {
  name: 'mongodb',
  label: 'MongoDB',
  defaultPort: 27017,
  envPrefix: 'MONGODB',
  // Replica-set members replicate within one set; a chain is the set's business, not the file's.
  cascading: false,
  needsReplicationLogin: false,
  sameApplicationOnly: true,
  serverKeys: ['data_dir', 'options_file', 'replica_set', 'follow_symlinks'],
  redact: [{ pattern: /mongodb(\+srv)?:\/\/[^@\s]*@/g, replacement: 'mongodb$1://***@' }],
};
