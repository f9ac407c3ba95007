/**
 * Benchmark: enabling a PostgreSQL slave of a ~230 MB database (pgbench -i -s 15) with
 * dbrepl, next to the same rebuild done by hand with the native tools (stop, move aside,
 * pg_basebackup -X stream -R -S <slot>, its own configuration files back, start, wait until
 * it streams) and to pg_basebackup alone, measured side by side in one run, `sync` before
 * each (a copy that starts while the previous one is still being flushed is slower).
 * Usage: npm run bench:enable [-- ROUNDS [PGBENCH_SCALE]]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dbrepl, median, printStamped, Ran, removeKept, runBench, syncDisks, timed, withServers } from './bench-common';
import { pgByHand, startPgPair } from './bench-engines';
import { PG_BIN } from '../test/support/postgres';

const rounds = Number(process.argv[2] ?? 3);
/** pgbench scale: 15 is ~230 MB, 40 ~600 MB (the size the issue measured). */
const scale = Number(process.argv[3] ?? 15);

const list = (xs: number[]): string => `${xs.map((s) => s.toFixed(2)).join(' ')} s (median ${median(xs).toFixed(2)} s)`;

runBench(() =>
  withServers('dbrepl-bench-', async (servers, dir) => {
    const p = await startPgPair(servers, dir, scale);
    const alone: number[] = [];
    const enable: number[] = [];
    const byHand: number[] = [];
    let last: Ran | undefined;
    for (let i = 0; i < rounds; i++) {
      const target = path.join(dir, `copy-${i}`);
      syncDisks();
      const args = ['-h', p.master.host, '-p', String(p.master.port), '-U', 'postgres', '-D', target, '-X', 'stream', '-c', 'fast'];
      alone.push((await timed('pg_basebackup', `${PG_BIN}/pg_basebackup`, args, { env: p.env })).seconds);
      fs.rmSync(target, { recursive: true, force: true });
      syncDisks();
      last = await dbrepl(i === 0 ? ['apply'] : ['resync', '--pair', 'app/replica'], p.file, p.env);
      enable.push(last.seconds);
      // Preserved copies are kept by design; remove them so the disk does not fill up.
      removeKept(p.slave.dataDir);
      if (i === 0) continue;
      syncDisks();
      byHand.push((await pgByHand(p, i)).seconds);
      removeKept(p.slave.dataDir);
    }
    if (last) printStamped('the last dbrepl run', last);
    console.log(`database size: ${p.size}; rounds: ${rounds}`);
    console.log(`pg_basebackup alone:       ${list(alone)}`);
    console.log(`dbrepl enable/resync:      ${list(enable)}`);
    console.log(`ratio enable / basebackup: ${(median(enable) / median(alone)).toFixed(2)}`);
    if (byHand.length === 0) return;
    console.log(`by hand (native tools):    ${list(byHand)}`);
    console.log(`ratio dbrepl / by hand:    ${(median(enable.slice(1)) / median(byHand)).toFixed(2)} (resync rounds only)`);
  }),
);
