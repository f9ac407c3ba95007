/**
 * The CI part of the fault suite (`npm run faults` runs all of it, Redis and the MongoDB
 * replica-set simulator too): on live PostgreSQL and MariaDB servers, the bundle SIGKILLed in the middle of a copy (MariaDB: at
 * the swap of its data directory and at the removal of the old one) and re-run until
 * it converges, with the master's data intact, the slave equal to it and its previous data
 * on disk; two applies at once; a disable started during a resync.
 */
import { disableDuringResync, FaultLab, killScenarios, Row, twoApplies } from '../support/faults';

jest.setTimeout(300_000);

const expectPass = (r: Row): void => {
  if (r.result !== 'pass') throw new Error(`${r.scenario}: ${r.detail}`);
  expect(r.runs).toBeGreaterThanOrEqual(1);
};

// MongoDB: on the replica-set simulator (test/support/mongo-sim), whose nodes live in this process.
// CI runs the engines whose rebuild moves data directories; `npm run faults` runs all four (Redis and MongoDB too).
describe.each(['postgresql', 'mysql'] as const)('%s', (engine) => {
  const lab = new FaultLab(engine);
  beforeAll(() => lab.start());
  afterAll(() => lab.stop());

  test('SIGKILL in the middle of the enable, of a resync and of a disable: re-runs converge, nothing lost', async () => {
    const rows: Row[] = [];
    const steps = await lab.planSteps();
    // MariaDB's physical copy also at its swap (the slave stopped, its data directory moved aside)
    // and at the removal of its previous data directory (never moved back once that began).
    const swap = steps.findIndex((s) => /^slave: .*; move .* to .*\.old and /.test(s));
    const discard = steps.findIndex((s) => /^slave host: remove .*\.old /.test(s));
    const enable = engine === 'mysql' ? [swap, discard] : [Math.floor(steps.length / 2)];
    if (engine === 'mysql') expect(Math.min(swap, discard)).toBeGreaterThan(0);
    await killScenarios(lab, { enable, disable: [99] }, (r) => rows.push(r));
    expect(rows.map((r) => r.scenario)).toHaveLength(enable.length + 2);
    rows.forEach(expectPass);
  });

  test('two applies at once: one enables, the other waits and finds nothing to do', async () => {
    expectPass(await twoApplies(lab));
  });

  test('a disable started during a resync waits for it, then promotes', async () => {
    expectPass(await disableDuringResync(lab));
  });
});
