import { createConnection, RowDataPacket } from 'mysql2/promise';
import { ConnectionError } from '../../errors';
import type { Server } from '../../topology';

/** The slice of mysql2 the engine uses (values are bound client-side with `?`). */
export interface Sql {
  /** `timeoutMs` for statements that wait on the server longer than the default 120 s. */
  query(sql: string, values?: unknown[], timeoutMs?: number): Promise<RowDataPacket[]>;
}

/** Opens an admin connection to a server, runs fn, always closes. */
export async function withClient<T>(server: Server, fn: (sql: Sql) => Promise<T>): Promise<T> {
  let conn;
  try {
    conn = await createConnection({
      host: server.host,
      port: server.port,
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
