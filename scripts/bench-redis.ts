/**
 * Benchmark: enabling a Redis slave of a ~1 GB dataset (DEBUG POPULATE) with dbrepl, next
 * to the time Redis itself reports for the full sync (the slave's log, from "Connecting to
 * MASTER" to "Finished with success"), measured in one run.
 * Usage: npm run bench:redis [-- KEYS]   (default 4,000,000 keys of 250 bytes)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { RedisServer, startRedis } from '../test/support/redis';

const keys = Number(process.argv[2] ?? 4_000_000);

/** Redis log lines: "pid:S 26 Nov 2026 07:15:09.123 * ..." */
function logTime(line: string): number {
  const m = /(\d+ \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3})/.exec(line);
  return m ? Date.parse(`${m[1]!.replace(/\.(\d{3})$/, '.$1')} UTC`) : NaN;
}

async function main(): Promise<void> {
  const servers: RedisServer[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-bench-redis-'));
  try {
    const [master, slave] = await Promise.all([startRedis(), startRedis()]);
    servers.push(master, slave);
    await master.call('DEBUG', 'POPULATE', keys, 'key', 250);
    const info = String(await master.call('INFO', 'memory'));
    const used = Number(/used_memory:(\d+)/.exec(info)![1]);
    const server = (s: RedisServer, v: string) => ({ engine: 'redis', host: s.host, port: s.port, password: `\${${v}}`, service: s.service });
    fs.writeFileSync(path.join(dir, 'replication.yml'), stringify({
      version: 1,
      applications: { app: { servers: { main: server(master, 'M'), replica: server(slave, 'S') } } },
      replications: [{ master: 'app/main', slave: 'app/replica' }],
    }));
    const env = { ...process.env, M: master.password, S: slave.password };
    const logStart = fs.readFileSync(slave.logFile, 'utf8').length;
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [path.resolve('dist/cli.js'), 'apply', '-c', path.join(dir, 'replication.yml')], { env, encoding: 'utf8' });
    const enable = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(r.stderr);
    const log = fs.readFileSync(slave.logFile, 'utf8').slice(logStart).split('\n');
    const start = logTime(log.find((l) => l.includes('Connecting to MASTER')) ?? '');
    const end = logTime(log.find((l) => l.includes('MASTER <-> REPLICA sync: Finished with success')) ?? '');
    const sync = (end - start) / 1000;
    console.log(`steps:\n${r.stderr.split('\n').filter((l) => l.startsWith('  ')).join('\n')}`);
    console.log(`dataset: ${keys} keys, used_memory ${(used / 2 ** 30).toFixed(2)} GiB`);
    console.log(`full sync as Redis reports it (slave log): ${sync.toFixed(2)} s`);
    console.log(`dbrepl enable (whole command):            ${enable.toFixed(2)} s`);
    console.log(`ratio enable / sync:                      ${(enable / sync).toFixed(2)}`);
  } finally {
    await Promise.all(servers.map((s) => s.destroy()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
