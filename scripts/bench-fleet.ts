/**
 * Benchmark: `dbrepl status` of a Redis fleet, next to the native way (redis-cli INFO
 * replication on every server, one after another), measured side by side in one run:
 * 20 masters with 10 replicas each (200 pairs, 220 redis-server processes), replication set
 * up with REPLICAOF. Prints wall time, peak memory of the dbrepl process (VmHWM), and
 * the ratio. Usage: npm run bench:fleet [-- MASTERS REPLICAS_PER_MASTER]
 */
import { runBench, withServers } from './bench-common';
import { redisFleet } from './bench-fleets';

const masters = Number(process.argv[2] ?? 20);
const per = Number(process.argv[3] ?? 10);

runBench(() =>
  withServers('dbrepl-bench-fleet-', async (servers, dir) => {
    const f = await redisFleet(servers, dir, masters, per, [4, 16]);
    console.log(`started ${f.servers} redis-server processes and ${f.pairs} replicas in ${f.setUpSeconds.toFixed(1)} s`);
    console.log('| run | seconds | peak MB | ratio to native | result |\n|---|---|---|---|---|');
    console.log(`| redis-cli INFO replication x each server (sequential) | ${f.nativeSeconds.toFixed(2)} | - | 1.00 | - |`);
    for (const s of f.status) {
      console.log(`| dbrepl status --max-parallel ${s.parallel} | ${s.seconds.toFixed(2)} | ${s.peakMb.toFixed(0)} | ${(s.seconds / f.nativeSeconds).toFixed(2)} | ${s.replicating}/${s.pairs} replicating |`);
    }
  }),
);
