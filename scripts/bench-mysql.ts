/**
 * Benchmark: enabling a MariaDB slave of a ~200 MB database with dbrepl, next to
 * `mariadb-dump | mariadb` alone on the same data, side by side in one run; and the
 * longest stall a writer on the master sees while dbrepl enables.
 * Usage: npm run bench:mysql [-- ROUNDS]
 */
import { dbrepl, median, printStamped, Ran, removeKept, runBench, timedShell, underLoad, withServers } from './bench-common';
import { detachScript, dumpLoadScript, mariaWriter, restoreSlaveAdmin, startMariaPair } from './bench-engines';

const rounds = Number(process.argv[2] ?? 2);
const list = (xs: number[]): string => `${xs.map((s) => s.toFixed(2)).join(' ')} s (median ${median(xs).toFixed(2)} s)`;

runBench(() =>
  withServers('dbrepl-bench-my-', async (servers, dir) => {
    const p = await startMariaPair(servers, dir, 800_000);
    const alone: number[] = [];
    const enable: number[] = [];
    const stalls: number[] = [];
    let last: Ran | undefined;
    for (let i = 0; i < rounds; i++) {
      // The plain copy needs a slave that is not replicating (as dbrepl prepares it itself).
      await timedShell('detach', detachScript(p), p.env);
      alone.push((await timedShell('dump | load', dumpLoadScript(p), p.env)).seconds);
      // The plain copy left the master's users on the slave: give it its admin login back.
      await restoreSlaveAdmin(p);
      const run = await underLoad(mariaWriter(p.master), async () => (last = await dbrepl(i === 0 ? ['apply'] : ['resync', '--pair', 'app/replica'], p.file, p.env)));
      enable.push(run.seconds);
      stalls.push(run.writes.maxGapMs);
      removeKept(p.slave.dataDir);
    }
    printStamped('the last dbrepl run', last!);
    console.log(`database size: ${p.sizeMb} MB; rounds: ${rounds}`);
    console.log(`mariadb-dump | mariadb alone: ${list(alone)}`);
    console.log(`dbrepl enable/resync:         ${list(enable)}`);
    console.log(`ratio enable / dump|load:     ${(median(enable) / median(alone)).toFixed(2)}`);
    console.log(`longest write stall on the master during enable: ${stalls.map((s) => `${s.toFixed(0)} ms`).join(', ')}`);
  }),
);
