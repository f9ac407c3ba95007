import type RedisClient from 'ioredis';
import { ConnectionError } from '../../errors';
import { onCancel } from '../../util/cancel';
import type { Server } from '../../model';
import type { Session } from '../engine';
import { nodeTls } from '../tls';

/** The slice of ioredis the engine uses. */
export interface Cmd {
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
}

/** One connection to a server at the endpoint the host layer gives (no reconnect loops, no offline queue), always closed. */
export async function withClient<T>(session: Session, server: Server, fn: (redis: Cmd) => Promise<T>): Promise<T> {
  const at = await session.hosts.endpoint(server);
  // The driver is loaded when a Redis server is first reached.
  const { default: Redis } = await import('ioredis');
  const redis: RedisClient = new Redis({
    // A Unix socket on this machine (a server whose host is a path, without ssh), else host and port.
    ...(at.host.startsWith('/') ? { path: at.host } : { host: at.host, port: at.port }),
    username: server.user,
    password: server.password,
    lazyConnect: true,
    connectTimeout: 10_000,
    commandTimeout: 120_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    // The ready check runs INFO, which a replication-only ACL user may not (and would warn on the console).
    enableReadyCheck: false,
    retryStrategy: () => null,
    tls: nodeTls(server) ?? undefined,
  });
  // The reason a connection closes (WRONGPASS, NOAUTH) arrives as an 'error' event; keep it for the message.
  let reason: Error | undefined;
  redis.on('error', (e: Error) => (reason ??= e));
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new ConnectionError(server.ref, `cannot connect to Redis at ${server.host}:${server.port}: ${(reason ?? (err as Error)).message}`, { cause: err });
  }
  // A cancelled run cuts the connection: a command waiting on the server ends at once.
  const off = onCancel(() => redis.disconnect());
  try {
    // Without a ready check, a refused AUTH shows as the next command failing: name the reason.
    return await fn({
      call: (command, ...args) =>
        redis.call(command, ...args).catch((err: unknown) => {
          throw reason ? new ConnectionError(server.ref, `cannot connect to Redis at ${server.host}:${server.port}: ${reason.message}`, { cause: reason }) : err;
        }),
    });
  } finally {
    off();
    redis.disconnect();
  }
}

/** `INFO` text as key -> value. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** `ip=10.0.0.2,port=6380,state=online,offset=123,lag=0` */
export function parseFields(text: string): Record<string, string> {
  return Object.fromEntries(text.split(',').map((kv) => kv.split('=') as [string, string]));
}
