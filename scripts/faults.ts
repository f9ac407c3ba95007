/**
 * `npm run faults`: the whole fault suite against real local servers (PostgreSQL, MariaDB,
 * Redis), with the committed bundle run as its own process. Prints one row per scenario:
 * runs to converge, data verified, result. Exit 1 if any row fails. FAULTS=postgresql,redis
 * limits the engines.
 */
import { execFileSync } from 'node:child_process';
import { FaultLab, Row, disableDuringResync, killScenarios, linkCut, masterRestartMidCopy, table, twoApplies } from '../test/support/faults';

const nft = (script: string): void => {
  execFileSync('nft', ['-f', '-'], { input: script });
};

/**
 * The slave's own connections to its master cut, and only those: a reset for every packet the
 * slave's server user sends to the master's port (the tool's own connections, as root, pass).
 */
function cutFor(user: string, port: number): { cut: () => Promise<void>; heal: () => Promise<void> } {
  const table = `dbrepl_cut_${port}`;
  return {
    cut: async () => nft(`table inet ${table} {\n chain out { type filter hook output priority 0; meta skuid "${user}" tcp dport ${port} reject with tcp reset; }\n}\n`),
    heal: async () => nft(`delete table inet ${table}\n`),
  };
}

const SERVER_USER = { postgresql: 'postgres', mysql: 'mysql', redis: 'redis' } as const;

async function main(): Promise<void> {
  const only = (process.env.FAULTS ?? 'postgresql,mysql,redis,mongodb').split(',');
  const rows: Row[] = [];
  const say = (r: Row): void => {
    rows.push(r);
    console.log(`${r.result === 'pass' ? 'ok  ' : 'FAIL'} ${r.scenario}: ${r.runs} run(s), ${r.verified} (${r.seconds.toFixed(1)} s)${r.detail ? `\n     ${r.detail}` : ''}`);
  };
  for (const engine of ['postgresql', 'mysql', 'redis', 'mongodb'] as const) {
    if (!only.includes(engine)) continue;
    const lab = new FaultLab(engine);
    console.log(`\n== ${engine} ==`);
    try {
      await lab.start();
      const enableSteps = (await lab.planSteps()).length;
      await killScenarios(lab, { enable: [0, Math.floor(enableSteps / 2), enableSteps - 1], disable: [1, 99] }, say);
      say(await masterRestartMidCopy(lab));
      say(await twoApplies(lab));
      say(await disableDuringResync(lab));
      // MongoDB: no link-cut row. Cut between the two members of a two-voter set, the primary
      // loses its majority and steps down (as a real set does; the plan warns about the even
      // count), so the scenario is an outage of the set, not a slave reconnecting.
      if (engine === 'mongodb') continue;
      // Each server runs as its own user, as systemd runs it: the cut singles out the slave's own connections.
      const { cut, heal } = cutFor(SERVER_USER[engine], lab.master.port);
      say(await linkCut(lab, cut, heal, 8));
    } finally {
      await lab.stop();
    }
  }
  console.log(`\n${table(rows)}\n`);
  const failed = rows.filter((r) => r.result !== 'pass').length;
  console.log(failed === 0 ? `All ${rows.length} scenarios passed.` : `${failed} of ${rows.length} scenarios failed.`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
