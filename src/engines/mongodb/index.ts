import type { Engine } from '../engine';
import { mongodbCapabilities } from './capabilities';
import { inspectMongo, MongoFacts } from './inspect';
import { lockMaster } from './lock';
import { preflight, verifyHost } from './preflight';
import { copies, identity, liveLinks, pairState } from './state';
import { plan } from './steps';

/** MongoDB: a pair is replica-set membership within one application (the master is the set's primary). */
export const mongodb: Engine<MongoFacts> = {
  capabilities: mongodbCapabilities,
  inspect: inspectMongo,
  identity,
  copies,
  pairState,
  liveLinks,
  plan,
  preflight,
  verifyHost,
  lockMaster,
};
