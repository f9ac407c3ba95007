import { engineFor } from '../engines';
import { ActionPlan, Inspection, Sides, stepText } from '../engines/engine';
import type { Pair, Server, Topology } from '../model';
import { plainOverNetwork, replicationTls } from '../engines/tls';
import { endpointKey } from '../topology';
import type { PgFacts } from '../engines/postgresql/inspect';
import { slotWarnings } from '../engines/postgresql/state';
import type { Action, DriftEntry, EnvMap, PairLive, Plan, PlannedPair, Status } from './types';

/** What the run asks for beyond converging on the file. */
export type Mode =
  | { kind: 'converge' }
  | { kind: 'resync'; pairs: ReadonlySet<string> }
  | { kind: 'resync-broken' };

export interface PlanInput {
  topology: Topology;
  selected: Pair[];
  inspections: ReadonlyMap<string, Inspection>;
  /** Timestamp used to name preserved data (`<data_dir>.dbrepl-<stamp>`). */
  stamp: string;
  mode: Mode;
  env: EnvMap;
}

function inspectionOf(inspections: ReadonlyMap<string, Inspection>, server: Server): Inspection {
  return inspections.get(server.ref) ?? { ok: false, server, error: 'not inspected' };
}

export function livePair(pair: Pair, inspections: ReadonlyMap<string, Inspection>): PairLive {
  return engineFor(pair.engine).pairState(pair, inspectionOf(inspections, pair.master), inspectionOf(inspections, pair.slave));
}

/** Both sides' facts of a pair, when both were inspected. */
export function sidesOf(pair: Pair, inspections: ReadonlyMap<string, Inspection>): Sides<unknown> | null {
  const m = inspectionOf(inspections, pair.master);
  const s = inspectionOf(inspections, pair.slave);
  return m.ok && s.ok ? { m: m.facts, s: s.facts } : null;
}

/**
 * The plan's step lines of an action: each step's text, what is undone on a failure, and
 * the variables. Apply runs exactly these steps.
 */
export function stepLines(plan: ActionPlan): string[] {
  const lines = plan.steps.map(stepText);
  const undo = [...plan.steps].reverse().flatMap((s) => (s.undo ? [s.undo.text] : []));
  if (undo.length > 0) lines.push(`on a failure, undone newest first: ${undo.join('; ')}`);
  lines.push('env: recompute the environment variables');
  return lines;
}

/** The decision table: desired state, live state and mode -> action and why. Pure. */
export function decide(pair: Pair, live: PairLive, mode: Mode): { action: Action; reason: string } {
  if (live.state === 'unreachable') return { action: 'none', reason: `cannot inspect: ${live.error ?? 'unreachable'}` };
  if (mode.kind === 'resync') {
    if (!mode.pairs.has(pair.name)) return { action: 'none', reason: 'not named for resync' };
    if (pair.desired === 'disabled') return { action: 'none', reason: 'pair is disabled in the file; nothing to resync' };
    return { action: 'resync', reason: `resync requested (slave is ${live.state})` };
  }
  if (mode.kind === 'resync-broken' && pair.desired === 'disabled') {
    return { action: 'none', reason: 'pair is disabled in the file; resync --broken does not disable (use apply)' };
  }
  const following = live.state === 'replicating' || live.state === 'lagging' || live.state === 'reconnecting' || live.state === 'broken';
  if (pair.desired === 'disabled') {
    if (following) return { action: 'disable', reason: `slave is ${live.state} but the pair is disabled in the file` };
    if (live.state === 'standalone' && live.masterKeepsSlave) {
      return { action: 'disable', reason: 'slave is standalone but the master still keeps replication state for it' };
    }
    if (live.state === 'other-master') return { action: 'none', reason: 'slave follows another server; this disabled pair leaves it alone' };
    return { action: 'none', reason: 'slave is standalone, as the file wants' };
  }
  if (mode.kind === 'resync-broken' && (live.state === 'replicating' || live.state === 'lagging' || live.state === 'reconnecting')) {
    return { action: 'none', reason: `slave is ${live.state}` };
  }
  switch (live.state) {
    case 'replicating':
      return { action: 'none', reason: 'slave is replicating from the declared master' };
    case 'lagging':
      return { action: 'none', reason: `slave follows the declared master but is lagging (${live.error ?? 'over max_lag'})` };
    case 'reconnecting':
      // A blip (master restarting, network): a rebuild would not help and costs a full copy.
      return { action: 'none', reason: `slave follows the declared master but its link is down (${live.error ?? 'reconnecting'}); it counts as broken only after resync_after` };
    case 'standalone':
      if (!live.masterKeepsSlave) {
        return mode.kind === 'resync-broken'
          ? { action: 'none', reason: 'slave is standalone and was never enabled; use apply to enable it' }
          : { action: 'enable', reason: 'slave is standalone' };
      }
      // Not something a scheduled --broken run should decide: a promoted slave may be taking writes.
      if (mode.kind === 'resync-broken') {
        return { action: 'none', reason: `slave is standalone although the master keeps its slot (promoted by hand?); not broken: rebuild it with apply or resync --pair ${pair.name}` };
      }
      return needsResync(pair, 'slave is standalone although the master still keeps replication state for it (promoted by hand?); writes it took since then are kept only in the preserved data');
    case 'broken':
      return needsResync(pair, `slave is broken: ${live.error ?? ''}`.trim());
    case 'other-master':
      return needsResync(pair, `slave follows another server: ${live.error ?? ''}`.trim());
  }
}

function needsResync(pair: Pair, why: string): { action: Action; reason: string } {
  if (pair.resync === 'manual') return { action: 'none', reason: `${why}; resync: manual, so it is left alone (run dbrepl resync --pair ${pair.name})` };
  return { action: 'resync', reason: why };
}

/**
 * Warnings that come from what a server holds rather than from a pair's action: PostgreSQL's
 * inactive dbrepl_ slots and the WAL they keep. Read from the inspections alone, so they are
 * said even when the pair's slave is down (then no check of the pair runs).
 */
function holdingWarnings(input: PlanInput): Map<string, string[]> {
  const facts = (server: Server): PgFacts | null => {
    const i = input.inspections.get(server.ref);
    return i?.ok && server.engine === 'postgresql' ? (i.facts as PgFacts) : null;
  };
  return slotWarnings(input.topology.pairs, input.selected, facts, (s) => identityOf(s, input.inspections));
}

/** A change needs both sides' facts: said as the pair's error when one side could not be inspected. */
function uninspected(pair: Pair, action: Action, inspections: ReadonlyMap<string, Inspection>): string {
  const down = [pair.master, pair.slave]
    .map((s) => inspectionOf(inspections, s))
    .filter((i): i is Extract<Inspection, { ok: false }> => !i.ok)
    .map((i) => `${i.server.ref} unreachable: ${i.error}`);
  return `cannot ${action} while a side cannot be inspected (${down.join('; ')}); plan again once it answers`;
}

export function planPairs(input: PlanInput): PlannedPair[] {
  const holding = holdingWarnings(input);
  return input.selected.map((pair) => {
    const live = livePair(pair, input.inspections);
    const { action, reason } = decide(pair, live, input.mode);
    const sides = sidesOf(pair, input.inspections);
    const details: ActionPlan = action !== 'none' && sides
      ? engineFor(pair.engine).plan(pair, action, sides, input.stamp)
      : { steps: [], disruption: null, preserved: null, lockDir: null, warnings: [] };
    return {
      name: pair.name,
      engine: pair.engine,
      master: pair.master.ref,
      slave: pair.slave.ref,
      desired: pair.desired,
      live: live.state,
      action,
      reason,
      steps: action === 'none' ? [] : stepLines(details),
      disruption: details.disruption,
      preserved: details.preserved,
      warnings: [...details.warnings, ...encryptionWarnings(pair), ...(holding.get(pair.name) ?? [])],
      replication_tls: replicationTls(pair.master),
      lag_seconds: live.lagSeconds,
      lag_bytes: live.lagBytes,
      // A slave judged from its own side (its master down) may need a rebuild, which needs the master.
      error: live.state === 'unreachable' ? live.error : action !== 'none' && !sides ? uninspected(pair, action, input.inspections) : null,
    };
  });
}

/** Who a declared server is, by identity when it was inspected (one key for one server under several names), else by address. */
export function identityOf(server: Server, inspections: ReadonlyMap<string, Inspection>): string {
  const i = inspections.get(server.ref);
  return i?.ok ? `${server.engine}:${engineFor(server.engine).identity(i.facts).key}` : endpointKey(server);
}

/** What travels unencrypted: the pair's replication channel, the tool's own connections (loopback aside). */
export function encryptionWarnings(pair: Pair): string[] {
  const out: string[] = [];
  if (pair.desired === 'enabled' && replicationTls(pair.master) === 'none' && plainOverNetwork({ ...pair.master, ssh: undefined })) {
    out.push(`replication traffic from ${pair.master.ref} to ${pair.slave.ref} is not encrypted: give ${pair.master.ref} a tls setting (mode require or verify-full)`);
  }
  for (const s of [pair.master, pair.slave]) {
    if (plainOverNetwork(s)) out.push(`dbrepl's own connection to ${s.ref} (${s.host}:${s.port}) is not encrypted: it has neither ssh nor tls`);
  }
  return out;
}

/** Live replication on declared servers that no pair of the file declares. */
export function findDrift(input: PlanInput, servers: Server[]): DriftEntry[] {
  if (input.mode.kind !== 'converge') return [];
  // By identity (else by address): a replica declared under a second name (for another
  // application's variables) is not drift, and a pruned "drift" must never be a declared slave.
  const declaredSlaves = new Set(input.topology.pairs.flatMap((p) => [endpointKey(p.slave), identityOf(p.slave, input.inspections)]));
  // A declared pair seen the other way round (its slave now the primary, as after a MongoDB
  // election or a failover): the pair's own state says so; it is never drift to prune.
  const reversed = (link: { master: Server | null; slave: Server }): boolean => !!link.master && input.topology.pairs.some((p) => p.master.ref === link.slave.ref && p.slave.ref === link.master!.ref);
  const out: DriftEntry[] = [];
  const engines = [...new Set(servers.map((s) => s.engine))];
  for (const name of engines) {
    const engine = engineFor(name);
    const ofEngine = servers.filter((s) => s.engine === name);
    const inspections = ofEngine.map((s) => inspectionOf(input.inspections, s));
    for (const link of engine.liveLinks(inspections, [...input.topology.servers.values()])) {
      if (declaredSlaves.has(endpointKey(link.slave)) || declaredSlaves.has(identityOf(link.slave, input.inspections)) || reversed(link)) continue;
      const master = link.master?.ref ?? link.upstream;
      const prune = input.topology.prune && link.master !== null;
      const pseudo = link.master ? prunePair(link.master, link.slave) : null;
      const sides = pseudo ? sidesOf(pseudo, input.inspections) : null;
      const steps = prune && pseudo && sides ? stepLines(engine.plan(pseudo, 'disable', sides, input.stamp)) : [];
      out.push({
        name: link.slave.ref,
        engine: name,
        master,
        slave: link.slave.ref,
        live: 'replicating',
        action: prune ? 'disable' : 'none',
        reason: link.master
          ? `${link.slave.ref} replicates from ${master} but the file declares no such pair${prune ? '; prune: true disables it' : ' (set prune: true to disable it)'}`
          : `${link.slave.ref} replicates from ${master}, which the file does not declare; declare it to manage this replication`,
        steps,
        error: null,
      });
    }
  }
  return out;
}

/** The pair a pruned drift entry is disabled as (default timeouts). */
export function prunePair(master: Server, slave: Server): Pair {
  return {
    name: slave.ref,
    index: -1,
    engine: master.engine,
    master,
    slave,
    desired: 'disabled',
    resync: 'manual',
    maxLagSeconds: 300,
    resyncAfterSeconds: 120,
    catchupTimeoutSeconds: 600,
    replication: {},
  };
}

export function buildPlan(input: PlanInput, servers: Server[]): Plan {
  const pairs = planPairs(input);
  const drift = findDrift(input, servers);
  const changes = pairs.filter((p) => p.action !== 'none').length + drift.filter((d) => d.action !== 'none').length;
  return { changes, pairs, drift, env: input.env };
}

export function buildStatus(selected: Pair[], inspections: ReadonlyMap<string, Inspection>): Status {
  return {
    pairs: selected.map((pair) => {
      const live = livePair(pair, inspections);
      return {
        name: pair.name,
        engine: pair.engine,
        master: pair.master.ref,
        slave: pair.slave.ref,
        desired: pair.desired,
        state: live.state,
        lag_seconds: live.lagSeconds,
        lag_bytes: live.lagBytes,
        error: live.error,
      };
    }),
  };
}
