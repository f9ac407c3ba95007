import type { Engine } from '../engine';
import { mysqlCapabilities } from './capabilities';
import type { MyFacts } from './inspect';
import { inspectWithHost } from './physical';
import { verifyHost } from './host-side';
import { lockMaster } from './lock';
import { preflight } from './preflight';
import { copies, identity, liveLinks, pairState } from './state';
import { plan } from './steps';

export const mysql: Engine<MyFacts> = {
  capabilities: mysqlCapabilities,
  inspect: inspectWithHost,
  identity,
  copies,
  pairState,
  liveLinks,
  plan,
  preflight,
  verifyHost,
  lockMaster,
};
