import type { Document, MongoClient as MongoClientType } from 'mongodb';
import { ConnectionError, DbreplError } from '../../errors';
import type { Server } from '../../model';
import { onCancel } from '../../util/cancel';
import type { Session } from '../engine';
import { nodeTls } from '../tls';

/** The slice of the driver the engine uses: one command, on `admin` unless named. */
export interface Cmd {
  command(doc: Document, db?: string): Promise<Document>;
}

/** A command the server refused: its code and codeName kept for the decisions that need them. */
export class MongoCommandError extends DbreplError {
  constructor(
    readonly server: string,
    readonly serverCode: number | undefined,
    readonly codeName: string | undefined,
    message: string,
  ) {
    super('STEP', `${server}: ${message}${codeName ? ` (${codeName}${serverCode !== undefined ? ` ${serverCode}` : ''})` : ''}`);
  }
}

/**
 * One connection straight to this server (directConnection: a secondary or a member that is
 * not initiated answers too), at the endpoint the host layer gives (an SSH tunnel included),
 * always closed. The driver is loaded only when a MongoDB server is inspected.
 */
export async function withClient<T>(session: Session, server: Server, fn: (db: Cmd) => Promise<T>, options: { quick?: boolean } = {}): Promise<T> {
  const { MongoClient } = await import('mongodb');
  const at = await session.hosts.endpoint(server);
  const tls = nodeTls(server);
  const client: MongoClientType = new MongoClient(`mongodb://${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}/`, {
    directConnection: true,
    // quick: a poll while a server starts or stops (refused at once rather than retried for 10 s).
    serverSelectionTimeoutMS: options.quick ? 1500 : 10_000,
    connectTimeoutMS: options.quick ? 1500 : 10_000,
    socketTimeoutMS: 0,
    heartbeatFrequencyMS: 10_000,
    retryWrites: false,
    retryReads: false,
    appName: 'dbrepl',
    ...(server.password !== undefined ? { auth: { username: server.user ?? 'admin', password: server.password }, authSource: 'admin' } : {}),
    ...(tls ? { tls: true, ...(tls.ca ? { ca: tls.ca as string } : {}), ...(tls.rejectUnauthorized === false ? { tlsInsecure: true } : {}), ...(tls.cert ? { cert: tls.cert as string, key: tls.key as string } : {}) } : {}),
  });
  try {
    await client.connect();
  } catch (err) {
    await client.close().catch(() => undefined);
    throw new ConnectionError(server.ref, `cannot connect to MongoDB at ${server.host}:${server.port}: ${(err as Error).message}`, { cause: err });
  }
  const off = onCancel(() => void client.close(true).catch(() => undefined));
  try {
    return await fn({
      command: async (doc, db = 'admin') => {
        try {
          return await client.db(db).command(doc);
        } catch (err) {
          const e = err as { code?: number; codeName?: string; errmsg?: string; message: string };
          if (e.code === undefined && !e.codeName) throw new ConnectionError(server.ref, `MongoDB at ${server.host}:${server.port}: ${e.message}`, { cause: err });
          throw new MongoCommandError(server.ref, e.code, e.codeName, e.errmsg ?? e.message);
        }
      },
    });
  } finally {
    off();
    await client.close().catch(() => undefined);
  }
}

/** The code of a refused command (or undefined). */
export const codeOf = (err: unknown): number | undefined => (err instanceof MongoCommandError ? err.serverCode : undefined);
