import { DbreplError, StepError } from '../../errors';
import { Host, pathExists, readFile, runChecked } from '../../hosts/host';
import type { PlannedPair } from '../../plan/types';
import type { Pair, Server } from '../../topology';
import { pollUntil, PollAbort } from '../../util/poll';
import type { ApplyContext } from '../engine';
import { step } from '../steps';
import { Cmd, withClient } from './client';
import { readFacts, RedisFacts } from './inspect';

/** Full syncs are bounded by the dataset: at least 5 minutes, plus a minute per 1 GiB. */
function syncTimeoutMs(bytes: number): number {
  return 300_000 + Math.ceil(bytes / 2 ** 30) * 60_000;
}

/**
 * The login the slave uses at the master: the pair's replication user when the master has
 * that ACL user, else the master's own credentials from the file (requirepass or ACL user).
 */
async function masterLogin(pair: Pair): Promise<{ user?: string; password?: string }> {
  const wanted = pair.replication.user;
  if (wanted && wanted !== 'default') {
    const exists = await withClient(pair.master, async (r) => (await r.call('ACL', 'GETUSER', wanted).catch(() => null)) !== null);
    if (exists) return { user: wanted, password: pair.replication.password };
  }
  return { user: pair.master.user, password: pair.master.password };
}

/** The preserved file is written where host commands run: that must be the slave's machine. */
async function verifyHost(host: Host, server: Server, facts: RedisFacts): Promise<void> {
  const comm = (await readFile(host, `/proc/${facts.processId}/comm`))?.trim();
  if (!(await pathExists(host, facts.dir)) || !comm?.startsWith('redis')) {
    throw new DbreplError('STEP', `host commands for ${server.ref} would run on ${host.label}, which does not run this server (no redis process ${facts.processId}, or no ${facts.dir}); run dbrepl on the server's own host`);
  }
}

async function rewrite(r: Cmd, facts: RedisFacts, ctx: ApplyContext, server: Server): Promise<void> {
  if (facts.configFile) await r.call('CONFIG', 'REWRITE');
  else ctx.log.warn(`${server.ref} has no config file: the change holds until its next restart only`);
}

/**
 * A fresh RDB of the server's current dataset. BGSAVE works on a replica whose link is
 * down too (a replica refuses to serve SYNC then, so redis-cli --rdb is no option).
 */
async function snapshot(server: Server): Promise<void> {
  await withClient(server, async (r) => {
    // rdb_saves counts finished snapshots (LASTSAVE has a one-second resolution).
    const saves = async (): Promise<{ n: number; running: boolean; ok: boolean }> => {
      const info = String(await r.call('INFO', 'persistence'));
      return {
        n: Number(/rdb_saves:(\d+)/.exec(info)?.[1] ?? -1),
        running: /rdb_bgsave_in_progress:1/.test(info),
        ok: /rdb_last_bgsave_status:ok/.test(info),
      };
    };
    let before = -1;
    await pollUntil(`a background save of ${server.ref} to start`, 120_000, async () => {
      const now = await saves();
      if (now.running) return undefined;
      before = now.n;
      try {
        await r.call('BGSAVE');
        return true;
      } catch (err) {
        // One started meanwhile: wait for it, then ask again.
        if (/in progress/i.test((err as Error).message)) return undefined;
        throw new PollAbort((err as Error).message);
      }
    });
    await pollUntil(`the background save of ${server.ref} to finish`, 600_000, async () => {
      const now = await saves();
      if (now.running || now.n <= before) return undefined;
      if (!now.ok) throw new PollAbort(`BGSAVE of ${server.ref} failed (see its log)`);
      return true;
    });
  });
}

/** Enable and resync: keep the slave's dataset, authenticate, REPLICAOF, persist, wait for the sync. */
export async function enable(pair: Pair, planned: PlannedPair, ctx: ApplyContext): Promise<{ preserved: string | null }> {
  const slaveHost = await ctx.hosts.forServer(pair.slave);
  const preserved = planned.preserved;
  if (!preserved) throw new StepError('preflight', 'the plan names no file for the previous dataset');
  const [master, slave] = await step(ctx, 'read both servers', () => Promise.all([withClient(pair.master, readFacts), withClient(pair.slave, readFacts)]));

  await step(ctx, 'preflight: not a master of its own, this host runs the slave', async () => {
    if (slave.role === 'master' && slave.replicas.length > 0) {
      throw new DbreplError('STEP', `${pair.slave.ref} is a master with ${slave.replicas.length} replica(s) of its own; refusing to overwrite a master — fix the file or detach them first`);
    }
    await verifyHost(slaveHost, pair.slave, slave);
    if (await pathExists(slaveHost, preserved)) throw new DbreplError('STEP', `${preserved} already exists; refusing to overwrite kept data`);
  });
  const login = await masterLogin(pair);

  await step(ctx, "slave: save its dataset (BGSAVE) and keep a copy", async () => {
    await snapshot(pair.slave);
    // The server writes its RDB on its own machine: copy it there (this host, checked above).
    await runChecked(slaveHost, ['cp', '-p', '--', `${slave.dir}/${slave.dbfilename}`, preserved], `keeping the RDB of ${pair.slave.ref}`);
  });
  await step(ctx, 'slave: authentication and read-only', () =>
    withClient(pair.slave, async (r) => {
      await r.call('CONFIG', 'SET', 'masterauth', login.password ?? '');
      await r.call('CONFIG', 'SET', 'masteruser', login.user && login.user !== 'default' ? login.user : '');
      await r.call('CONFIG', 'SET', 'replica-read-only', 'yes');
    }),
  );
  await step(ctx, 'slave: REPLICAOF the master', () =>
    withClient(pair.slave, async (r) => {
      // A replica re-attached under a new replication ID cannot continue partially: a full sync follows.
      if (planned.action === 'resync') await r.call('REPLICAOF', 'NO', 'ONE');
      await r.call('REPLICAOF', pair.master.host, String(pair.master.port));
      await rewrite(r, slave, ctx, pair.slave);
    }),
  );
  await step(ctx, 'slave: wait until the initial sync has finished and the link is up', () =>
    pollUntil(`${pair.slave.ref} to finish its sync from ${pair.master.ref} (its previous dataset is at ${preserved})`, syncTimeoutMs(master.usedMemory), () =>
      withClient(pair.slave, async (r) => {
        const f = await readFacts(r);
        return f.role === 'slave' && f.linkUp && !f.syncInProgress ? true : undefined;
      }),
    ),
  );
  return { preserved };
}

/** Disable: catch up to the master's offset, REPLICAOF NO ONE, persist. */
export async function disable(pair: Pair, _planned: PlannedPair, ctx: ApplyContext): Promise<void> {
  const target = await step(ctx, 'master: note its replication offset', () => withClient(pair.master, async (r) => (await readFacts(r)).masterOffset));
  await step(ctx, 'slave: wait until its offset has reached it', async () => {
    let at = 0;
    try {
      await pollUntil(`${pair.slave.ref} to reach offset ${target}`, pair.catchupTimeoutSeconds * 1000, () =>
        withClient(pair.slave, async (r) => {
          const f = await readFacts(r);
          if (f.role === 'master') return true;
          at = f.replicaOffset ?? 0;
          return at >= target ? true : undefined;
        }),
      );
    } catch (err) {
      throw new DbreplError('STEP', `${(err as Error).message}; the slave is at ${at}, ${target - at} bytes behind; nothing was changed (raise catchup_timeout or repair the link, then apply again)`);
    }
  });
  await step(ctx, 'slave: REPLICAOF NO ONE and persist', () =>
    withClient(pair.slave, async (r) => {
      const f = await readFacts(r);
      await r.call('REPLICAOF', 'NO', 'ONE');
      await rewrite(r, f, ctx, pair.slave);
    }),
  );
}
