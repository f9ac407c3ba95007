/**
 * decide(): desired state x live state x resync setting x mode -> action. Derived from
 * SPEC sections 2 and 3: apply converges on the file (enable a standalone slave, disable
 * a pair the file disables, rebuild a broken or drifted slave only when resync is auto);
 * `resync --pair` rebuilds exactly the named, enabled pairs; `resync --broken` rebuilds
 * broken ones and does nothing else; an unreachable pair is never touched.
 */
import { decide, Mode } from '../../src/plan/diff';
import type { Action, LiveState, PairLive } from '../../src/plan/types';
import { pair, server } from './helpers/build';

const LIVE = ['replicating', 'lagging', 'reconnecting', 'broken', 'other-master', 'standalone', 'standalone+kept', 'unreachable'] as const;
type LiveCase = (typeof LIVE)[number];

function live(c: LiveCase): PairLive {
  const state: LiveState = c === 'standalone+kept' ? 'standalone' : c;
  const error: Record<LiveState, string | null> = {
    replicating: null,
    lagging: 'replay lag 400s is over max_lag 300s',
    reconnecting: 'link to the master down for 12s (connection refused)',
    broken: 'WAL receiver is stopping',
    'other-master': 'slave follows 10.0.0.9:5432',
    standalone: null,
    unreachable: 'shop/pg-main unreachable: connection refused',
  };
  const following = state === 'replicating' || state === 'lagging' || state === 'reconnecting' || state === 'broken';
  return {
    state,
    lagSeconds: following ? 1 : null,
    lagBytes: following ? 0 : null,
    error: error[state],
    masterKeepsSlave: c === 'standalone+kept' || following,
  };
}

const MASTER = server('shop/pg-main', { host: '10.0.1.5' });
const SLAVE = server('shop/pg-replica', { host: '10.0.1.6' });

type ModeCase = 'converge' | 'resync (this pair named)' | 'resync (another pair named)' | 'resync --broken';
const MODES: Record<ModeCase, Mode> = {
  converge: { kind: 'converge' },
  'resync (this pair named)': { kind: 'resync', pairs: new Set(['shop/pg-replica']) },
  'resync (another pair named)': { kind: 'resync', pairs: new Set(['dr-copy']) },
  'resync --broken': { kind: 'resync-broken' },
};

type Row = [desired: 'enabled' | 'disabled', resync: 'auto' | 'manual', mode: ModeCase, actions: Action[]];
//                                                          replicating lagging reconnecting broken    other-master standalone standalone+kept unreachable
const TABLE: Row[] = [
  ['enabled', 'auto', 'converge', /*                     */ ['none', 'none', 'none', 'resync', 'resync', 'enable', 'resync', 'none']],
  ['enabled', 'manual', 'converge', /*                   */ ['none', 'none', 'none', 'none', 'none', 'enable', 'none', 'none']],
  ['disabled', 'auto', 'converge', /*                    */ ['disable', 'disable', 'disable', 'disable', 'none', 'none', 'disable', 'none']],
  ['disabled', 'manual', 'converge', /*                  */ ['disable', 'disable', 'disable', 'disable', 'none', 'none', 'disable', 'none']],
  ['enabled', 'auto', 'resync (this pair named)', /*     */ ['resync', 'resync', 'resync', 'resync', 'resync', 'resync', 'resync', 'none']],
  ['enabled', 'manual', 'resync (this pair named)', /*   */ ['resync', 'resync', 'resync', 'resync', 'resync', 'resync', 'resync', 'none']],
  ['disabled', 'auto', 'resync (this pair named)', /*    */ ['none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']],
  ['disabled', 'manual', 'resync (this pair named)', /*  */ ['none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']],
  ['enabled', 'auto', 'resync (another pair named)', /*  */ ['none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']],
  ['enabled', 'manual', 'resync (another pair named)', /**/ ['none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']],
  ['disabled', 'auto', 'resync (another pair named)', /* */ ['none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']],
  ['disabled', 'manual', 'resync (another pair named)', /**/ ['none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']],
  // A slave promoted by hand is not broken: it may be taking writes, so a scheduled --broken run leaves it (apply or --pair rebuild it).
  ['enabled', 'auto', 'resync --broken', /*              */ ['none', 'none', 'none', 'resync', 'resync', 'none', 'none', 'none']],
  ['enabled', 'manual', 'resync --broken', /*            */ ['none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']],
  // `resync --broken` rebuilds broken slaves; it is not apply and must not disable (promote) anything.
  ['disabled', 'auto', 'resync --broken', /*             */ ['none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']],
  ['disabled', 'manual', 'resync --broken', /*           */ ['none', 'none', 'none', 'none', 'none', 'none', 'none', 'none']],
];

describe('decision table', () => {
  test.each(TABLE)('desired %s, resync %s, mode %s', (desired, resync, mode, actions) => {
    const p = pair(MASTER, SLAVE, { desired, resync });
    const got = Object.fromEntries(LIVE.map((l) => [l, decide(p, live(l), MODES[mode]).action]));
    const want = Object.fromEntries(LIVE.map((l, i) => [l, actions[i]]));
    expect(got).toEqual(want);
  });
});

describe('reasons tell the operator why', () => {
  test('an unreachable pair says what could not be inspected', () => {
    const { reason } = decide(pair(MASTER, SLAVE), live('unreachable'), MODES.converge);
    expect(reason).toContain('shop/pg-main unreachable: connection refused');
  });

  test('a broken pair left alone because of resync: manual names the command that rebuilds it', () => {
    const { action, reason } = decide(pair(MASTER, SLAVE, { resync: 'manual' }), live('broken'), MODES.converge);
    expect(action).toBe('none');
    expect(reason).toContain('WAL receiver is stopping');
    expect(reason).toContain('dbrepl resync --pair shop/pg-replica');
  });

  test('a lagging pair is reported, with the lag, and not rebuilt', () => {
    const { action, reason } = decide(pair(MASTER, SLAVE), live('lagging'), MODES.converge);
    expect(action).toBe('none');
    expect(reason).toContain('over max_lag');
  });

  test('a slave that follows another server says which', () => {
    const { reason } = decide(pair(MASTER, SLAVE), live('other-master'), MODES.converge);
    expect(reason).toContain('10.0.0.9:5432');
  });

  test('enable says the slave is standalone', () => {
    expect(decide(pair(MASTER, SLAVE), live('standalone'), MODES.converge)).toEqual({ action: 'enable', reason: 'slave is standalone' });
  });

  test('a disabled pair still replicating says the file disables it', () => {
    expect(decide(pair(MASTER, SLAVE, { desired: 'disabled' }), live('replicating'), MODES.converge).reason).toMatch(/disabled in the file/);
  });
});
