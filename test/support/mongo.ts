/**
 * MongoDB servers for the tests. Here: nodes of the replica-set SIMULATOR (test/support/
 * mongo-sim; no mongod can be installed on this machine). With DBREPL_MONGOD=<path of mongod>
 * (the `mongodb-live` job of the CI workflow, in a mongo:7 container): real mongod processes,
 * each with its own YAML config file, dbPath and port, started and stopped by the same
 * `service` lines the file gives dbrepl. Either way a node is a config file (the `options_file`
 * dbrepl edits), a dbPath (`data_dir`) and service commands.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import YAML from 'yaml';
import { MongoSim, SimNode } from './mongo-sim/replset';
import { freePort, sh } from './sh';

export const LIVE_MONGOD = process.env.DBREPL_MONGOD ?? '';

export interface MongoNode {
  port: number;
  host: string;
  base: string;
  configFile: string;
  dbPath: string;
  service: { stop: string; start: string };
  /** The simulated node (null against real mongod). */
  sim: SimNode | null;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A command on this node (direct connection). */
  command(doc: Document, db?: string): Promise<Document>;
  insert(db: string, coll: string, docs: Document[]): Promise<void>;
  count(db: string, coll: string): Promise<number>;
}

export class MongoLab {
  readonly sim: MongoSim | null = LIVE_MONGOD ? null : new MongoSim();
  readonly nodes: MongoNode[] = [];

  async open(): Promise<void> {
    await this.sim?.open();
  }

  async close(): Promise<void> {
    for (const n of this.nodes) await n.stop().catch(() => undefined);
    await this.sim?.close();
    for (const n of this.nodes) fs.rmSync(n.base, { recursive: true, force: true });
  }

  /** A node with its own config file and dbPath, started; `replSetName` puts it in (not yet initiated) set mode. */
  async node(options: { replSetName?: string } = {}): Promise<MongoNode> {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-mongo-'));
    const port = await freePort();
    const dbPath = path.join(base, 'data');
    fs.mkdirSync(dbPath);
    const configFile = path.join(base, 'mongod.conf');
    const conf: Document = {
      storage: { dbPath },
      net: { port, bindIp: '127.0.0.1' },
      ...(LIVE_MONGOD ? { systemLog: { destination: 'file', path: path.join(base, 'mongod.log'), logAppend: true }, processManagement: { fork: true, pidFilePath: path.join(base, 'mongod.pid') } } : {}),
      ...(options.replSetName ? { replication: { replSetName: options.replSetName } } : {}),
    };
    fs.writeFileSync(configFile, `# mongod configuration (a test server)\n${YAML.stringify(conf)}`);
    const sim = this.sim ? this.sim.addNode(port, configFile) : null;
    const service = sim
      ? this.sim!.service(sim)
      : { start: `${LIVE_MONGOD} --config ${configFile} >/dev/null`, stop: `${LIVE_MONGOD} --config ${configFile} --shutdown >/dev/null || true` };
    const node: MongoNode = {
      port,
      host: '127.0.0.1',
      base,
      configFile,
      dbPath,
      service,
      sim,
      start: async () => void (await sh('/bin/sh', ['-c', service.start])),
      stop: async () => void (await sh('/bin/sh', ['-c', service.stop], { allowFail: true })),
      command: (doc, db = 'admin') => withNode(port, (c) => c.db(db).command(doc)),
      insert: (db, coll, docs) => withNode(port, async (c) => void (await c.db(db).collection(coll).insertMany(docs))),
      count: (db, coll) => withNode(port, async (c) => Number((await c.db(db).command({ count: coll })).n)),
    };
    this.nodes.push(node);
    await node.start();
    return node;
  }
}

async function withNode<T>(port: number, fn: (c: MongoClient) => Promise<T>): Promise<T> {
  const c = new MongoClient(`mongodb://127.0.0.1:${port}/`, { directConnection: true, serverSelectionTimeoutMS: 5000, retryWrites: false });
  try {
    await c.connect();
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** replication.yml server entry of a node. */
export const mongoServer = (n: MongoNode, replicaSet = 'rs0'): Record<string, unknown> => ({
  engine: 'mongodb',
  host: n.host,
  port: n.port,
  replica_set: replicaSet,
  data_dir: n.dbPath,
  options_file: n.configFile,
  service: n.service,
});
