import { applyPlan } from './apply/run';
import { loadConfig } from './config/load';
import { engineFor, unsupportedMessage } from './engines';
import type { Inspection, Logger } from './engines/engine';
import { computeEnv, desiredEnv } from './env/compute';
import { UsageError, messageOf } from './errors';
import type { HostProvider } from './hosts/host';
import { DefaultHostProvider } from './hosts/provider';
import { buildPlan, buildStatus, livePair, Mode } from './plan/diff';
import type { EnvMap, Plan, PlannedPair, Status } from './plan/types';
import type { SecretRegistry } from './secrets';
import { Pair, selectPairs, Server, Topology } from './topology';

/** Everything the core needs from its caller (CLI or action); nothing below reads process state. */
export interface CoreOptions {
  configPath: string;
  only?: string[];
  maxParallel: number;
  env: NodeJS.ProcessEnv;
  secrets: SecretRegistry;
  log: Logger;
  hosts?: HostProvider;
  now?: Date;
}

export type Command = 'plan' | 'apply' | 'status' | 'resync';

export interface RunResult {
  plan: Plan;
  status: Status;
  env: EnvMap;
  /** 0 success, 1 error (unreachable server, failed step) — SPEC section 3. */
  exitCode: 0 | 1;
}

export function load(options: CoreOptions): { topology: Topology; selected: Pair[] } {
  const { topology } = loadConfig(options.configPath, options.env, options.secrets);
  const { pairs, unknown } = selectPairs(topology, options.only);
  if (unknown.length > 0) {
    throw new UsageError(`--only names no pair or application: ${unknown.join(', ')}; pairs: ${topology.pairs.map((p) => p.name).join(', ') || '(none)'}; applications: ${topology.applications.map((a) => a.name).join(', ')}`);
  }
  return { topology, selected: pairs };
}

/** Servers to inspect: both sides of every selected pair, and (for drift) every server of the selected applications. */
function serversToInspect(topology: Topology, selected: Pair[], only: string[] | undefined): Server[] {
  const refs = new Set<string>();
  for (const p of selected) {
    refs.add(p.master.ref);
    refs.add(p.slave.ref);
  }
  const apps = only && only.length > 0 ? new Set([...selected.flatMap((p) => [p.master.app, p.slave.app]), ...only]) : null;
  for (const s of topology.servers.values()) if (!apps || apps.has(s.app)) refs.add(s.ref);
  return [...refs].map((r) => topology.servers.get(r)!);
}

export async function inspectServers(servers: Server[], maxParallel: number, log: Logger): Promise<Map<string, Inspection>> {
  const out = new Map<string, Inspection>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < servers.length) {
      const server = servers[next++]!;
      const engine = engineFor(server.engine);
      if (!engine) {
        out.set(server.ref, { ok: false, server, error: unsupportedMessage(server.engine) });
        continue;
      }
      try {
        out.set(server.ref, { ok: true, server, facts: await engine.inspectServer(server) });
      } catch (err) {
        const msg = messageOf(err);
        const error = msg.startsWith(`${server.ref}: `) ? msg.slice(server.ref.length + 2) : msg;
        log.warn(`${server.ref}: cannot inspect: ${error}`);
        out.set(server.ref, { ok: false, server, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(maxParallel, servers.length)) }, worker));
  return out;
}

/** UTC to the millisecond (20261126T071509123Z): two runs in one second must not name the same path. */
function stampOf(now: Date): string {
  return now.toISOString().replace(/[-:.]/g, '');
}

/** Inspect, diff, and (for apply/resync) execute; the status and env reflect the end state. */
export async function run(command: Command, options: CoreOptions, mode: Mode = { kind: 'converge' }): Promise<RunResult> {
  const { topology, selected } = load(options);
  if (mode.kind === 'resync') {
    const known = new Set(topology.pairs.map((p) => p.name));
    const missing = [...mode.pairs].filter((p) => !known.has(p));
    if (missing.length > 0) throw new UsageError(`resync names unknown pair(s): ${missing.join(', ')}; pairs: ${[...known].join(', ') || '(none)'}`);
  }
  const servers = serversToInspect(topology, selected, options.only);
  options.log.info(`Inspecting ${servers.length} server(s) for ${selected.length} pair(s)`);
  const inspections = await inspectServers(servers, options.maxParallel, options.log);
  const plan = buildPlan(
    { topology, selected, inspections, stamp: stampOf(options.now ?? new Date()), mode, env: desiredEnv(topology) },
    servers,
  );
  const before = buildStatus(selected, inspections);
  const unreachable = before.pairs.some((p) => p.state === 'unreachable');

  if (command === 'plan' || command === 'status') {
    return { plan, status: before, env: plan.env, exitCode: unreachable ? 1 : 0 };
  }

  const hosts = options.hosts ?? new DefaultHostProvider();
  try {
    await applyPlan(plan, { topology, hosts, log: options.log, maxParallel: options.maxParallel });
  } finally {
    await hosts.closeAll();
  }
  // Verify: inspect again; the status and the variables come from what is live now.
  const after = await inspectServers(servers, options.maxParallel, options.log);
  const status = buildStatus(selected, after);
  const env = computeEnv(topology, (pair) => inEffect(pair, plan.pairs.find((p) => p.name === pair.name), after));
  plan.env = env;
  const failed = plan.pairs.some((p) => p.result === 'failed') || plan.drift.some((d) => d.result === 'failed');
  return { plan, status, env, exitCode: failed || unreachable ? 1 : 0 };
}

/**
 * Whether a pair counts in the environment variables after apply: a pair the run did not
 * select keeps what the file says; a selected one counts when it is verified live.
 */
function inEffect(pair: Pair, planned: PlannedPair | undefined, after: ReadonlyMap<string, Inspection>): boolean {
  if (!planned) return pair.desired === 'enabled';
  const state = livePair(pair, after).state;
  return state === 'replicating' || state === 'lagging';
}
