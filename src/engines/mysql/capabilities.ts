import type { EngineCapabilities } from '../names';

export const mysqlCapabilities: EngineCapabilities = {
  name: 'mysql',
  label: 'MySQL/MariaDB',
  defaultPort: 3306,
  envPrefix: 'MYSQL',
  cascading: true,
  needsReplicationLogin: true,
  sameApplicationOnly: false,
  serverKeys: ['data_dir', 'options_file', 'follow_symlinks'],
  // The clients echo the statement they failed on: password hashes and literals are not for reports.
  redact: [
    { pattern: /\*[0-9A-Fa-f]{40}/g, replacement: '***' },
    { pattern: /\b(AS|PASSWORD|USING) '[^']*'/gi, replacement: "$1 '***'" },
  ],
};
