/** The progress meter of long copies and the health rule of `status --detailed-exitcode`, without servers. */
import { asDesired, StatusPair } from '../../src/plan/types';
import { CopyProgress } from '../../src/util/progress';

const MiB = 1024 * 1024;

function meter(options: { total?: number | null; estimated?: boolean } = {}) {
  let t = 1_000_000;
  const said: string[] = [];
  const m = new CopyProgress('shop/pg-replica: copy', (l) => said.push(l), { ...options, everyMs: 5000, now: () => t });
  return { m, said, tick: (ms: number) => (t += ms) };
}

test('says at a steady interval, not on every update: done, total, percent, rate, ETA', () => {
  const { m, said, tick } = meter({ total: 600 * MiB });
  for (let i = 1; i <= 10; i++) {
    tick(1000);
    m.update(i * 20 * MiB);
  }
  // 10 updates over 10 s, one line per 5 s.
  expect(said).toEqual(['shop/pg-replica: copy 100.0 MiB of 600.0 MiB (16%), 20.0 MiB/s, ETA 25 s', 'shop/pg-replica: copy 200.0 MiB of 600.0 MiB (33%), 20.0 MiB/s, ETA 20 s']);
  m.finish();
  expect(said[2]).toBe('shop/pg-replica: copy finished: 200.0 MiB in 10 s (20.0 MiB/s)');
});

test('an estimated total says ~ and stays under 100%; once outgrown it is dropped', () => {
  const { m, said, tick } = meter({ total: 100 * MiB, estimated: true });
  tick(5000);
  m.update(99.9 * MiB);
  tick(5000);
  m.update(150 * MiB);
  expect(said[0]).toMatch(/^shop\/pg-replica: copy 99\.9 MiB of ~100\.0 MiB \(99%\), 20\.0 MiB\/s, ETA 0\.0 s$/);
  expect(said[1]).toBe('shop/pg-replica: copy 150.0 MiB, 15.0 MiB/s');
});

test('a better total replaces the first guess; long ETAs in minutes and hours', () => {
  const { m, said, tick } = meter({ total: 10 * MiB, estimated: true });
  m.setTotal(100 * 1024 * MiB);
  tick(60_000);
  m.update(60 * MiB);
  expect(said[0]).toBe('shop/pg-replica: copy 60.0 MiB of 100.0 GiB (0%), 1.0 MiB/s, ETA 28 h 25 min');
});

test('a copy too quick to be seen under way finishes with its time only', () => {
  const { m, said, tick } = meter();
  tick(400);
  m.finish();
  expect(said).toEqual(['shop/pg-replica: copy finished in 0.4 s']);
});

describe('asDesired: what status --detailed-exitcode counts as healthy', () => {
  const row = (desired: 'enabled' | 'disabled', state: StatusPair['state']): StatusPair => ({ name: 'p', engine: 'postgresql', master: 'a/m', slave: 'a/s', desired, state, lag_seconds: null, lag_bytes: null, error: null });
  test.each([
    ['enabled', 'replicating', true],
    ['enabled', 'lagging', false],
    ['enabled', 'broken', false],
    ['enabled', 'other-master', false],
    ['enabled', 'standalone', false],
    ['enabled', 'unreachable', false],
    ['disabled', 'standalone', true],
    ['disabled', 'other-master', true],
    ['disabled', 'replicating', false],
    ['disabled', 'lagging', false],
    ['disabled', 'broken', false],
  ] as const)('%s and %s -> %s', (desired, state, ok) => {
    expect(asDesired(row(desired, state))).toBe(ok);
  });
});
