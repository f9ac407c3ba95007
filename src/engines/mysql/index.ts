import type { Engine } from '../engine';
import { mysqlCapabilities } from './capabilities';
import { inspectMysql, MyFacts } from './inspect';
import { verifyHost } from './host-side';
import { lockMaster } from './lock';
import { preflight } from './preflight';
import { copies, identity, liveLinks, pairState } from './state';
import { plan } from './steps';

export const mysql: Engine<MyFacts> = {
  capabilities: mysqlCapabilities,
  inspect: inspectMysql,
  identity,
  copies,
  pairState,
  liveLinks,
  plan,
  preflight,
  verifyHost,
  lockMaster,
};
