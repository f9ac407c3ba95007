// Builds the committed bundles: dist/index.js (action) and dist/cli.js (dbrepl).
// They must run with no node_modules present, on Node 20 and on the runner's node24.
//
// The database drivers and ssh2 are loaded only when a server that needs them is reached
// (`await import(...)` in the engines): each is its own file in dist/vendor/, so a command
// that reaches no server (validate, env, list, --help) does not compile ~4 MB of drivers.
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

/** Lazily loaded packages and the file each becomes in dist/vendor/. */
const VENDOR = { pg: 'pg', 'mysql2/promise': 'mysql2', ioredis: 'ioredis', mongodb: 'mongodb', ssh2: 'ssh2' };

/**
 * A dynamic import of a vendored package becomes a CommonJS require of its file next to the
 * bundle (through a small shim), made when the import runs: the driver's named exports stay.
 */
const vendor = {
  name: 'vendor',
  setup(b) {
    b.onResolve({ filter: /^(pg|mysql2\/promise|ioredis|mongodb|ssh2)$/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, namespace: 'vendor' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'vendor' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(`./vendor/${VENDOR[args.path]}.js`)});`, loader: 'js' }));
    b.onResolve({ filter: /^\.\/vendor\//, namespace: 'vendor' }, (args) => ({ path: args.path, external: true }));
  },
};

for (const [pkg, name] of Object.entries(VENDOR)) {
  await build({ ...common, stdin: { contents: `module.exports = require(${JSON.stringify(pkg)});`, resolveDir: process.cwd(), loader: 'js' }, outfile: `dist/vendor/${name}.js` });
}
await build({ ...common, plugins: [vendor], entryPoints: ['src/index.ts'], outfile: 'dist/index.js' });
await build({ ...common, plugins: [vendor], entryPoints: ['src/cli.ts'], outfile: 'dist/cli.js' });
chmodSync('dist/cli.js', 0o755);
