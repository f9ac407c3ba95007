import type { Engine } from '../engine';
import { postgresqlCapabilities } from './capabilities';
import { inspectPostgres, PgFacts } from './inspect';
import { lockMaster } from './lock';
import { preflight } from './preflight';
import { verifyHost } from './slave';
import { copies, identity, liveLinks, pairState } from './state';
import { plan } from './steps';

export const postgresql: Engine<PgFacts> = {
  capabilities: postgresqlCapabilities,
  inspect: inspectPostgres,
  identity,
  copies,
  pairState,
  liveLinks,
  plan,
  preflight,
  verifyHost,
  lockMaster,
};
