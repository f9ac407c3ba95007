import { Client } from 'pg';
import { ConnectionError } from '../../errors';
import type { Server } from '../../topology';

/** The slice of pg the engine uses. */
export interface Sql {
  query<R extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  escapeIdentifier(s: string): string;
  escapeLiteral(s: string): string;
}

const CONNECT_TIMEOUT_MS = 10_000;

/** Opens an admin connection to a server, runs fn, always closes. */
export async function withClient<T>(server: Server, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const client = new Client({
    host: server.host,
    port: server.port,
    user: server.user ?? 'postgres',
    password: server.password,
    database: 'postgres',
    application_name: 'dbrepl',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: 60_000,
    // The server enforces statement_timeout; these bound a wait on a partitioned network.
    query_timeout: 90_000,
    keepAlive: true,
  });
  // An idle connection dropped by the server (e.g. during promotion) must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new ConnectionError(server.ref, `cannot connect to PostgreSQL at ${server.host}:${server.port}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
