// Builds the committed bundles: dist/index.js (action) and dist/cli.js (dbrepl).
// They must run with no node_modules present, on Node 20 and on the runner's node24.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: false,
  legalComments: 'eof',
  logLevel: 'warning',
  // pg loads pg-native only when asked for it, inside a try; it is not used. ssh2 tries its
  // optional native crypto binding and cpu-features inside a try too and falls back to
  // JavaScript: left out, the bundle runs with no node_modules and no compiler.
  external: ['pg-native', 'cpu-features', '*.node'],
};

await build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.js' });
await build({ ...common, entryPoints: ['src/cli.ts'], outfile: 'dist/cli.js' });
chmodSync('dist/cli.js', 0o755);
