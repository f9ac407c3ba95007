import type { Server } from '../../topology';
import { DEFAULT_SERVICE } from './state';

export const STOP_TIMEOUT_MS = 120_000;
export const START_TIMEOUT_MS = 180_000;

export function service(server: Server): { stop: string; start: string } {
  return server.service ?? DEFAULT_SERVICE;
}
