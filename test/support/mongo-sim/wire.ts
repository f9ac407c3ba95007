/**
 * The MongoDB wire protocol, server side, for the replica-set simulator (test code only): a
 * TCP server that reads OP_MSG (opcode 2013, what the driver sends once it knows the server)
 * and OP_QUERY (2004, the driver's first hello), hands each command document to a handler and
 * writes the reply as OP_MSG or OP_REPLY (1). Compression, checksums and exhaust (moreToCome)
 * replies are not spoken: the simulator's hello leaves out topologyVersion, so the driver
 * polls instead of streaming (see MONGODB.md beside the project's lab notes).
 */
import * as net from 'node:net';
import { BSON, type Document } from 'bson';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const MORE_TO_COME = 1 << 1;
const CHECKSUM_PRESENT = 1 << 0;

export type CommandHandler = (command: Document, connection: { id: number }) => Promise<Document> | Document;

/** One listening peer; `close()` ends every connection, as a killed mongod does. */
export class WireServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private nextConnection = 1;
  private requestId = 1;

  constructor(private readonly handler: CommandHandler) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(port: number, host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const connection = { id: this.nextConnection++ };
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    // Requests on one connection are answered in order, one at a time (as a server thread does).
    let queue = Promise.resolve();
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4) {
        const length = buffered.readInt32LE(0);
        if (buffered.length < length) break;
        const message = buffered.subarray(0, length);
        buffered = buffered.subarray(length);
        queue = queue.then(() => this.answer(socket, message, connection)).catch(() => void socket.destroy());
      }
    });
  }

  private async answer(socket: net.Socket, message: Buffer, connection: { id: number }): Promise<void> {
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode === OP_MSG) {
      const flags = message.readUInt32LE(16);
      const command = parseSections(message.subarray(20, flags & CHECKSUM_PRESENT ? message.length - 4 : message.length));
      const reply = await this.run(command, connection);
      if (flags & MORE_TO_COME) return;
      socket.write(this.opMsg(requestId, reply));
      return;
    }
    if (opCode === OP_QUERY) {
      let at = 20;
      while (message[at] !== 0) at++;
      at += 1 + 8; // the collection name's NUL, numberToSkip, numberToReturn
      const size = message.readInt32LE(at);
      const command = BSON.deserialize(message.subarray(at, at + size));
      // A legacy command document may be wrapped as {$query: {...}, $readPreference}.
      const reply = await this.run((command.$query as Document | undefined) ?? command, connection);
      socket.write(this.opReply(requestId, reply));
      return;
    }
    throw new Error(`opcode ${opCode} is not spoken by the simulator`);
  }

  private async run(command: Document, connection: { id: number }): Promise<Document> {
    try {
      return await this.handler(command, connection);
    } catch (err) {
      const e = err as { code?: number; codeName?: string; message: string };
      return { ok: 0, errmsg: e.message, code: e.code ?? 8000, codeName: e.codeName ?? 'UnknownError' };
    }
  }

  private header(length: number, responseTo: number, opCode: number): Buffer {
    const h = Buffer.alloc(16);
    h.writeInt32LE(length, 0);
    h.writeInt32LE(this.requestId++, 4);
    h.writeInt32LE(responseTo, 8);
    h.writeInt32LE(opCode, 12);
    return h;
  }

  private opMsg(responseTo: number, reply: Document): Buffer {
    const body = BSON.serialize(reply);
    const flags = Buffer.alloc(4);
    const kind = Buffer.from([0]);
    return Buffer.concat([this.header(16 + 4 + 1 + body.length, responseTo, OP_MSG), flags, kind, body]);
  }

  private opReply(responseTo: number, reply: Document): Buffer {
    const body = BSON.serialize(reply);
    const fields = Buffer.alloc(20);
    fields.writeInt32LE(0, 0); // responseFlags
    fields.writeBigInt64LE(0n, 4); // cursorID
    fields.writeInt32LE(0, 12); // startingFrom
    fields.writeInt32LE(1, 16); // numberReturned
    return Buffer.concat([this.header(16 + 20 + body.length, responseTo, OP_REPLY), fields, body]);
  }
}

/** OP_MSG sections: the body (kind 0), and document sequences (kind 1) added to it under their identifier. */
function parseSections(data: Buffer): Document {
  let body: Document = {};
  const sequences: Record<string, Document[]> = {};
  let at = 0;
  while (at < data.length) {
    const kind = data[at]!;
    at += 1;
    if (kind === 0) {
      const size = data.readInt32LE(at);
      body = BSON.deserialize(data.subarray(at, at + size));
      at += size;
    } else {
      const size = data.readInt32LE(at);
      const end = at + size;
      let p = at + 4;
      const nameEnd = data.indexOf(0, p);
      const name = data.toString('utf8', p, nameEnd);
      p = nameEnd + 1;
      const docs: Document[] = [];
      while (p < end) {
        const n = data.readInt32LE(p);
        docs.push(BSON.deserialize(data.subarray(p, p + n)));
        p += n;
      }
      sequences[name] = docs;
      at = end;
    }
  }
  return { ...body, ...sequences };
}

/** A server error as a reply carries it: `{ok: 0, errmsg, code, codeName}`. */
export class ServerError extends Error {
  constructor(
    readonly code: number,
    readonly codeName: string,
    message: string,
  ) {
    super(message);
  }
}
