import { capabilitiesOf } from '../engines/capabilities';
import type { Pair, Server, Topology } from '../model';
import type { EnvMap } from '../plan/types';

function entry(s: Server): string {
  return s.port === capabilitiesOf(s.engine).defaultPort ? s.host : `${s.host}:${s.port}`;
}

/**
 * SPEC section 5: per application and engine, its master's address and port and every
 * slave replicating from that master (cascaded ones included), computed from the pairs
 * that `isEnabled` says are in effect.
 */
export function computeEnv(topology: Topology, isEnabled: (pair: Pair) => boolean): EnvMap {
  const active = topology.pairs.filter(isEnabled);
  const masterOf = new Map(active.map((p) => [p.slave.ref, p.master]));
  const slavesOf = (server: Server): Server[] => {
    const out: Server[] = [];
    const walk = (s: Server): void => {
      for (const p of active) {
        if (p.master.ref === s.ref && !out.includes(p.slave)) {
          out.push(p.slave);
          walk(p.slave);
        }
      }
    };
    walk(server);
    return out.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  };

  const env: EnvMap = {};
  for (const app of topology.applications) {
    const vars: Record<string, string> = {};
    const engines = [...new Set(app.servers.map((s) => s.engine))];
    for (const engine of engines) {
      const E = capabilitiesOf(engine).envPrefix;
      const servers = app.servers.filter((s) => s.engine === engine);
      // The application's master: not a slave of another server of the same application.
      // Among several, one the file never names as a slave inside the application comes
      // first (a just-disabled replica must not take the writes), then declaration order.
      const candidates = servers.filter((s) => {
        const up = masterOf.get(s.ref);
        return !up || up.app !== app.name;
      });
      const everSlave = (s: Server): boolean => topology.pairs.some((p) => p.slave.ref === s.ref && p.master.app === app.name);
      const master = candidates.find((s) => !everSlave(s)) ?? candidates[0];
      if (!master) continue;
      vars[`${E}_ADDRESS`] = master.host;
      vars[`${E}_PORT`] = String(master.port);
      vars[`${E}_SLAVE_ADDRESSES`] = slavesOf(master).map(entry).join(',');
      if (engine === 'mongodb') {
        const members = [master, ...slavesOf(master).filter((s) => s.app === app.name)];
        const list = members.map(entry).join(',');
        vars.MONGODB_ADDRESSES = list;
        vars.MONGODB_URL = `mongodb://${list}/?replicaSet=${encodeURIComponent(master.replicaSet)}`;
      }
    }
    env[app.name] = vars;
  }
  return env;
}

/** What `apply` converges to: the file's enabled pairs. */
export function desiredEnv(topology: Topology): EnvMap {
  return computeEnv(topology, (p) => p.desired === 'enabled');
}

/** `VARIABLE=value` lines, one application after another under `# <application>`. */
export function toDotenv(env: EnvMap): string {
  const blocks: string[] = [];
  for (const [app, vars] of Object.entries(env)) {
    const lines = [`# ${app}`, ...Object.entries(vars).map(([k, v]) => `${k}=${/^[A-Za-z0-9_.,:\/@-]*$/.test(v) ? v : JSON.stringify(v)}`)];
    blocks.push(lines.join('\n'));
  }
  return blocks.join('\n\n') + (blocks.length ? '\n' : '');
}
