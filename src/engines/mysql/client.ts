import { createConnection, RowDataPacket } from 'mysql2/promise';
import { ConnectionError } from '../../errors';
import type { Server } from '../../model';
import type { Session } from '../engine';

/** The slice of mysql2 the engine uses (values are bound client-side with `?`). */
export interface Sql {
  /** `timeoutMs` for statements that wait on the server longer than the default 120 s. */
  query(sql: string, values?: unknown[], timeoutMs?: number): Promise<RowDataPacket[]>;
}

/** Opens an admin connection at the endpoint the host layer gives, runs fn, always closes. */
export async function withClient<T>(session: Session, server: Server, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const at = await session.hosts.endpoint(server);
  let conn;
  try {
    conn = await createConnection({
      host: at.host,
      port: at.port,
      user: server.user ?? 'root',
      password: server.password,
      connectTimeout: 10_000,
      enableKeepAlive: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
    });
  } catch (err) {
    throw new ConnectionError(server.ref, `cannot connect to MySQL at ${server.host}:${server.port}: ${(err as Error).message}`, { cause: err });
  }
  // A connection dropped by the server must not crash the process.
  conn.on('error', () => undefined);
  const sql: Sql = {
    query: async (text, values, timeoutMs = 120_000) => {
      const [rows] = await conn.query({ sql: text, values, timeout: timeoutMs });
      return (Array.isArray(rows) ? rows : []) as RowDataPacket[];
    },
  };
  try {
    return await fn(sql);
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}
