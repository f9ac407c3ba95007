import type { Engine } from '../engine';
import { disable, enable } from './apply';
import { inspectMysql, MyFacts } from './inspect';
import { describe, liveLinks, pairState } from './state';

export const mysql: Engine<MyFacts> = {
  name: 'mysql',
  inspectServer: inspectMysql,
  pairState,
  describe,
  liveLinks,
  enable,
  disable,
};
