/**
 * Builders for unit tests: a topology from a plain object (through the real schema and
 * resolver), and hand-made servers and pairs for the pure decision code.
 */
import { configSchema, EngineName } from '../../../src/config/schema';
import { DEFAULT_PORTS, Pair, resolveTopology, Server, Topology, TopologyIssue } from '../../../src/topology';

/** Parses `doc` with the real schema and resolves it; throws with the issues when it does not resolve. */
export function topologyOf(doc: unknown): Topology {
  const resolved = resolveTopology(configSchema.parse(doc));
  if (!resolved.ok) throw new Error(`topology did not resolve: ${resolved.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return resolved.topology;
}

/** The issues of a document that parses but does not resolve. */
export function issuesOf(doc: unknown): TopologyIssue[] {
  const resolved = resolveTopology(configSchema.parse(doc));
  if (resolved.ok) throw new Error('expected the topology to be rejected, but it resolved');
  return resolved.issues;
}

export function server(ref: string, opts: Partial<Server> & { engine?: EngineName } = {}): Server {
  const [app, name] = ref.split('/') as [string, string];
  const engine = opts.engine ?? 'postgresql';
  return {
    ref,
    app,
    name,
    engine,
    host: opts.host ?? `${name}.${app}.internal`,
    port: opts.port ?? DEFAULT_PORTS[engine],
    replicaSet: 'rs0',
    ...opts,
  };
}

export function pair(master: Server, slave: Server, opts: Partial<Pair> = {}): Pair {
  return {
    name: slave.ref,
    index: 0,
    engine: master.engine,
    master,
    slave,
    desired: 'enabled',
    resync: 'auto',
    maxLagSeconds: 300,
    resyncAfterSeconds: 120,
    catchupTimeoutSeconds: 600,
    replication: { user: 'replicator', password: 'x' },
    ...opts,
  };
}
