import type { Client } from 'pg';
import { ConnectionError } from '../../errors';
import { onCancel } from '../../util/cancel';
import type { Server } from '../../model';
import type { Session } from '../engine';
import { nodeTls } from '../tls';

/** The slice of pg the engine uses. */
export interface Sql {
  query<R extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  escapeIdentifier(s: string): string;
  escapeLiteral(s: string): string;
}

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Opens an admin connection to a server at the endpoint the host layer gives (direct, or
 * a tunnel), runs fn, always closes. `login` replaces the file's admin login (a probe).
 */
export async function withClient<T>(session: Session, server: Server, fn: (sql: Sql) => Promise<T>, login?: { user?: string; password?: string }): Promise<T> {
  const client = await openClient(session, server, login);
  // A cancelled run cuts the connection: a query waiting on the server ends at once.
  const off = onCancel(() => (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy());
  try {
    return await fn(client);
  } finally {
    off();
    await client.end().catch(() => undefined);
  }
}

/** A connected client, for a connection held longer than one call (a master's lock). */
export async function openClient(session: Session, server: Server, login?: { user?: string; password?: string }, applicationName = 'dbrepl'): Promise<Client> {
  const at = await session.hosts.endpoint(server);
  // The driver is loaded when a PostgreSQL server is first reached (start-up of the other commands stays light).
  const pg = await import('pg');
  const client = new pg.Client({
    host: at.host,
    port: at.port,
    user: (login ? login.user : server.user) ?? 'postgres',
    // Never the runner's PGPASSWORD: only what the file gives.
    password: (login ? login.password : server.password) ?? '',
    database: 'postgres',
    application_name: applicationName,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: 60_000,
    // The server enforces statement_timeout; these bound a wait on a partitioned network.
    query_timeout: 90_000,
    keepAlive: true,
    // The server's `tls`: verify-full checks the certificate against the file's host, also through a
    // tunnel. Without one, no TLS: never what the runner's PGSSLMODE happens to say.
    ssl: nodeTls(server) ?? false,
  });
  // An idle connection dropped by the server (e.g. during promotion) must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new ConnectionError(server.ref, `cannot connect to PostgreSQL at ${server.host}:${server.port}: ${(err as Error).message}`, { cause: err });
  }
  return client;
}
