/**
 * Benchmark: `dbrepl status` of a Redis fleet, next to the native way (redis-cli INFO
 * replication on every server, one after another), measured side by side in one run:
 * 20 masters with 10 replicas each (200 pairs, 220 redis-server processes), replication set
 * up with REPLICAOF. Prints wall time, peak memory of the dbrepl process (GNU time %M), and
 * the ratio. Usage: npm run bench:fleet [-- MASTERS REPLICAS_PER_MASTER]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { cleanUp, runBench } from './bench-common';
import { RedisServer, startRedis } from '../test/support/redis';

const masters = Number(process.argv[2] ?? 20);
const per = Number(process.argv[3] ?? 10);

async function main(): Promise<void> {
  const servers: RedisServer[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-bench-fleet-'));
  const password = 'fleet-bench-password';
  try {
    const t0 = Date.now();
    const apps: Record<string, { servers: Record<string, unknown> }> = {};
    const pairs: Array<Record<string, string>> = [];
    for (let i = 0; i < masters; i++) {
      const group = await Promise.all(Array.from({ length: per + 1 }, () => startRedis({ password })));
      servers.push(...group);
      const [m, ...replicas] = group;
      apps[`app${i}`] = { servers: Object.fromEntries(group.map((s, j) => [j === 0 ? 'main' : `r${j}`, { engine: 'redis', host: s.host, port: s.port, password: '${FLEET_PW}' }])) };
      await Promise.all(
        replicas.map(async (r, j) => {
          await r.call('CONFIG', 'SET', 'masterauth', password);
          await r.call('REPLICAOF', m!.host, String(m!.port));
          pairs.push({ master: `app${i}/main`, slave: `app${i}/r${j + 1}` });
        }),
      );
    }
    console.log(`started ${servers.length} redis-server processes and ${pairs.length} replicas in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, 3000));
    const file = path.join(dir, 'replication.yml');
    fs.writeFileSync(file, stringify({ version: 1, applications: apps, replications: pairs }));
    const env = { ...process.env, FLEET_PW: password };

    // Native: INFO replication on every server, one after another (what a script would do).
    const n0 = Date.now();
    for (const s of servers) spawnSync('redis-cli', ['-h', s.host, '-p', String(s.port), '--no-auth-warning', '-a', password, 'INFO', 'replication'], { stdio: 'ignore' });
    const native = (Date.now() - n0) / 1000;

    const rows: Array<[string, number, number | null, string]> = [['redis-cli INFO replication x each server (sequential)', native, null, '-']];
    for (const parallel of [4, 16]) {
      const d0 = Date.now();
      const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, 'dist/cli.js', 'status', '--json', '--max-parallel', String(parallel), '-c', file], { env, encoding: 'utf8' });
      const took = (Date.now() - d0) / 1000;
      const kb = Number(r.stderr.trim().split('\n').pop());
      const doc = JSON.parse(r.stdout) as { pairs: Array<{ state: string }> };
      const replicating = doc.pairs.filter((p) => p.state === 'replicating').length;
      rows.push([`dbrepl status --max-parallel ${parallel}`, took, kb / 1024, `${replicating}/${doc.pairs.length} replicating`]);
    }
    console.log('| run | seconds | peak MB | ratio to native | result |\n|---|---|---|---|---|');
    for (const [name, s, mb, what] of rows) console.log(`| ${name} | ${s.toFixed(2)} | ${mb === null ? '-' : mb.toFixed(0)} | ${(s / native).toFixed(2)} | ${what} |`);
  } finally {
    await cleanUp(servers, dir);
  }
}

runBench(main);
