/**
 * Benchmark: enabling a Redis slave of a ~1 GB dataset (DEBUG POPULATE) with dbrepl, next
 * to the time Redis itself reports for the full sync (the slave's log, from "Connecting to
 * MASTER" to "Finished with success"), measured in one run.
 * Usage: npm run bench:redis [-- KEYS]   (default 4,000,000 keys of 250 bytes)
 */
import * as fs from 'node:fs';
import { dbrepl, printStamped, runBench, withServers } from './bench-common';
import { startRedisPair } from './bench-engines';

const keys = Number(process.argv[2] ?? 4_000_000);

/** Redis log lines: "pid:S 26 Nov 2026 07:15:09.123 * ..." */
function logTime(line: string): number {
  const m = /(\d+ \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3})/.exec(line);
  return m ? Date.parse(`${m[1]!.replace(/\.(\d{3})$/, '.$1')} UTC`) : NaN;
}

runBench(() =>
  withServers('dbrepl-bench-redis-', async (servers, dir) => {
    const p = await startRedisPair(servers, dir, keys);
    const logStart = fs.readFileSync(p.slave.logFile, 'utf8').length;
    const r = await dbrepl(['apply'], p.file, p.env);
    const log = fs.readFileSync(p.slave.logFile, 'utf8').slice(logStart).split('\n');
    const start = logTime(log.find((l) => l.includes('Connecting to MASTER')) ?? '');
    const end = logTime(log.find((l) => l.includes('MASTER <-> REPLICA sync: Finished with success')) ?? '');
    const sync = (end - start) / 1000;
    printStamped('dbrepl apply', r);
    console.log(`dataset: ${keys} keys, used_memory ${(p.usedMb / 1024).toFixed(2)} GiB`);
    console.log(`full sync as Redis reports it (slave log): ${sync.toFixed(2)} s`);
    console.log(`dbrepl enable (whole command):            ${r.seconds.toFixed(2)} s`);
    console.log(`ratio enable / sync:                      ${(r.seconds / sync).toFixed(2)}`);
  }),
);
