/**
 * Benchmark: a PostgreSQL fleet of 50 pairs, one master with 50 standbys (51 clusters):
 * `dbrepl apply` enabling all 50 (pg_basebackup each), then `dbrepl status`, next to the
 * native way of reading the same state (psql pg_stat_replication / pg_stat_wal_receiver on
 * every server, one after another), measured side by side in one run, with peak memory.
 * Usage: npm run bench:fleet-pg [-- PAIRS]
 */
import { runBench, withServers } from './bench-common';
import { pgFleet } from './bench-fleets';

const pairs = Number(process.argv[2] ?? 50);

runBench(() =>
  withServers('dbrepl-bench-fleet-pg-', async (servers, dir) => {
    const f = await pgFleet(servers, dir, pairs, [4, 16]);
    console.log(`started ${f.servers} clusters and enabled them in ${f.setUpSeconds.toFixed(1)} s`);
    console.log('| run | seconds | peak MB | result |\n|---|---|---|---|');
    console.log(`| dbrepl apply (${pairs} enables) | ${f.apply!.seconds.toFixed(2)} | ${f.apply!.peakMb!.toFixed(0)} | ${f.apply!.done}/${pairs} done |`);
    console.log(`| psql on each server (sequential) | ${f.nativeSeconds.toFixed(2)} | - | - |`);
    for (const s of f.status) {
      console.log(`| dbrepl status --max-parallel ${s.parallel} | ${s.seconds.toFixed(2)} | ${s.peakMb.toFixed(0)} | ${s.replicating}/${s.pairs} replicating; ${(s.seconds / f.nativeSeconds).toFixed(2)}x native |`);
    }
  }),
);
