import * as net from 'node:net';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { ConnectionError } from '../../errors';
import { onCancel } from '../../util/cancel';
import type { Server } from '../../model';
import type { Session } from '../engine';
import { nodeTls } from '../tls';

/** The slice of mysql2 the engine uses (values are bound client-side with `?`). */
export interface Sql {
  /** `timeoutMs` for statements that wait on the server longer than the default 120 s. */
  query(sql: string, values?: unknown[], timeoutMs?: number): Promise<RowDataPacket[]>;
}

const LOCK_WAIT_S = 90;

/** A connected admin session, for a connection held longer than one call (a master's lock). */
export async function openConnection(session: Session, server: Server): Promise<Connection> {
  const at = await session.hosts.endpoint(server);
  const tunneled = at.host !== server.host || at.port !== server.port;
  const t = nodeTls(server);
  let conn: Connection;
  // The driver is loaded when a MySQL server is first reached.
  const { createConnection } = await import('mysql2/promise');
  try {
    conn = await createConnection({
      // mysql2 checks the certificate against `host`: the file's host, also when a tunnel carries the bytes.
      ...(at.host.startsWith('/') ? { socketPath: at.host } : { host: server.host, port: server.port }),
      ...(tunneled ? { stream: () => tunnelSocket(at.host, at.port, server.host) } : {}),
      ssl: t ? { ca: t.ca as string | undefined, cert: t.cert as string | undefined, key: t.key as string | undefined, rejectUnauthorized: t.rejectUnauthorized, verifyIdentity: server.tls?.mode === 'verify-full' } : undefined,
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
  return conn;
}

/** Opens an admin connection at the endpoint the host layer gives, runs fn, always closes. */
export async function withClient<T>(session: Session, server: Server, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const conn = await openConnection(session, server);
  // A statement waiting on a metadata lock (a DROP behind a long transaction) waits up to
  // lock_wait_timeout, a day or a year by default: bound it below the client's own limit.
  await conn.query(`SET SESSION lock_wait_timeout = ${LOCK_WAIT_S}`).catch(() => undefined);
  let timedOut = false;
  const sql: Sql = {
    query: async (text, values, timeoutMs = 120_000) => {
      try {
        const [rows] = await conn.query({ sql: text, values, timeout: timeoutMs });
        return (Array.isArray(rows) ? rows : []) as RowDataPacket[];
      } catch (err) {
        if ((err as { code?: string }).code === 'PROTOCOL_SEQUENCE_TIMEOUT') timedOut = true;
        throw err;
      }
    },
  };
  // A cancelled run cuts the connection: a statement waiting on the server ends at once.
  let cut = false;
  const off = onCancel(() => {
    cut = true;
    conn.destroy();
  });
  try {
    return await fn(sql);
  } finally {
    off();
    // After a client time-out the statement may still run on the server, and end() would
    // queue behind it: close the socket instead (the server then ends the session).
    if (timedOut || cut) conn.destroy();
    else await conn.end().catch(() => conn.destroy());
  }
}

/**
 * A socket to the tunnel's local end that TLS takes for the server itself: Node names the
 * certificate's expected host after the socket's `_host` when no servername is given (an
 * IP address), and that must be the server's, not 127.0.0.1.
 */
function tunnelSocket(host: string, port: number, serverHost: string): net.Socket {
  const socket = net.connect(port, host);
  (socket as net.Socket & { _host?: string })._host = serverHost;
  return socket;
}

/** The data and index bytes of every table of a server (what a copy moves, roughly). */
export async function dataBytes(session: Session, server: Server): Promise<number> {
  return withClient(session, server, async (sql) => {
    const [r] = await sql.query('SELECT COALESCE(SUM(data_length + index_length), 0) AS b FROM information_schema.TABLES');
    return Number(r!.b);
  });
}
