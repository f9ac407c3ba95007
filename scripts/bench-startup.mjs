// `npm run bench:startup`: how long the commands that reach no server take to start, measured
// side by side in one run against bare `node -e 0` (median of 15 runs each, after 2 warm-ups),
// with a replication.yml of 3 engines. Prints one table: command, median ms, ratio to bare node.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'dbrepl-startup-'));
const file = join(dir, 'replication.yml');
writeFileSync(
  file,
  `version: 1
defaults:
  replication: { user: replicator, password: '\${REPL_PW}' }
applications:
  shop:
    servers:
      pg-main: { engine: postgresql, host: 10.0.1.5, password: '\${PG_PW}' }
      pg-replica: { engine: postgresql, host: 10.0.1.6, password: '\${PG_PW}' }
      db: { engine: mysql, host: 10.0.2.5, password: '\${MY_PW}' }
      cache: { engine: redis, host: 10.0.3.5, password: '\${REDIS_PW}' }
  shop-dr:
    servers:
      db: { engine: mysql, host: 10.0.2.6, password: '\${MY_PW}' }
      cache: { engine: redis, host: 10.0.3.6, password: '\${REDIS_PW}' }
replications:
  - { master: shop/pg-main, slave: shop/pg-replica }
  - { master: shop/db, slave: shop-dr/db }
  - { master: shop/cache, slave: shop-dr/cache }
`,
);
const cli = join(process.cwd(), 'dist/cli.js');
const cases = [
  ['node -e 0 (bare)', ['-e', '0']],
  ['dbrepl --help', [cli, '--help']],
  ['dbrepl validate', [cli, 'validate', '-c', file]],
  ['dbrepl env', [cli, 'env', '-c', file]],
  ['dbrepl list --json', [cli, 'list', '--json', '-c', file]],
];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (args) => {
  const t0 = process.hrtime.bigint();
  execFileSync(process.execPath, args, { stdio: 'ignore', env: { PATH: process.env.PATH, REPL_PW: 'r', PG_PW: 'p', MY_PW: 'm', REDIS_PW: 'x' } });
  return Number(process.hrtime.bigint() - t0) / 1e6;
};
const rows = [];
for (const [name, args] of cases) {
  for (let i = 0; i < 2; i++) time(args);
  rows.push([name, median(Array.from({ length: 15 }, () => time(args)))]);
}
rmSync(dir, { recursive: true, force: true });
const bare = rows[0][1];
console.log('| command | median ms | ratio to bare node |\n|---|---|---|');
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(0)} | ${(ms / bare).toFixed(2)} |`);
