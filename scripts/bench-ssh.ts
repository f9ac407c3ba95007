/**
 * Benchmark: the same enable/resync of a PostgreSQL slave (pgbench -i -s 15, ~230 MB) run
 * with both clusters on the runner, and run over SSH with each cluster on a host of its
 * own (network namespaces with their own sshd, as test/integration/ssh.int.test.ts), side
 * by side in one run. Usage: npm run bench:ssh [-- ROUNDS]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { Lab, SSH_USER } from '../test/support/lab';
import { PG_BIN, PgCluster, startPostgres } from '../test/support/postgres';

const rounds = Number(process.argv[2] ?? 3);
const HBA = ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256', 'host all all 10.77.0.0/16 scram-sha-256', ''].join('\n');

let lastSteps = '';
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  spawnSync('sync');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, cwd: '/tmp', encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  lastSteps = r.stderr;
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const password = randomBytes(12).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-bench-ssh-'));
  const clusters: PgCluster[] = [];
  const lab = await Lab.create(['a', 'b']);
  try {
    const local = await Promise.all([startPostgres({ password, hba: HBA }), startPostgres({ password, hba: HBA })]);
    const remote = await Promise.all(['a', 'b'].map((h) => startPostgres({ password, hba: HBA, netns: lab.host(h).ns, address: lab.host(h).back })));
    clusters.push(...local, ...remote);
    const env = { ...process.env, PGPASSWORD: password, PG_PW: password, REPL_PW: randomBytes(12).toString('hex'), SSH_KEY: lab.clientKey, KNOWN_HOSTS: lab.knownHosts };
    for (const master of [local[0]!, remote[0]!]) timed(`${PG_BIN}/pgbench`, ['-h', master.netns ? master.base : master.host, '-p', String(master.port), '-U', 'postgres', '-i', '-s', '15', '-q', 'postgres'], env);
    const write = (name: string, [m, s]: PgCluster[], ssh: (c: PgCluster) => object | undefined): string => {
      const server = (c: PgCluster) => ({ engine: 'postgresql', host: c.host, port: c.port, user: 'postgres', password: '${PG_PW}', service: c.service, ...(ssh(c) ? { ssh: ssh(c) } : {}) });
      const file = path.join(dir, `${name}.yml`);
      fs.writeFileSync(file, stringify({
        version: 1,
        defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
        applications: { app: { servers: { main: server(m!), replica: server(s!) } } },
        replications: [{ master: 'app/main', slave: 'app/replica' }],
      }));
      return file;
    };
    const front = (c: PgCluster) => [...lab.hosts.values()].find((h) => h.ns === c.netns)!.front;
    const files = {
      local: write('local', local, () => undefined),
      ssh: write('ssh', remote, (c) => ({ host: front(c), user: SSH_USER, private_key: '${SSH_KEY}', known_hosts: '${KNOWN_HOSTS}', sudo: true })),
    };
    const cli = path.resolve('dist/cli.js');
    const times: Record<string, number[]> = { local: [], ssh: [] };
    for (let i = 0; i < rounds; i++) {
      for (const kind of ['local', 'ssh'] as const) {
        const args = i === 0 ? ['apply'] : ['resync', '--pair', 'app/replica'];
        times[kind]!.push(timed(process.execPath, [cli, ...args, '-c', files[kind]], env));
        const slave = (kind === 'local' ? local : remote)[1]!;
        for (const f of fs.readdirSync(path.dirname(slave.dataDir))) if (/\.dbrepl-\d/.test(f)) fs.rmSync(path.join(path.dirname(slave.dataDir), f), { recursive: true, force: true });
      }
    }
    console.log(`steps of the last run over SSH:\n${lastSteps.split('\n').filter((l) => /done in|^app\/replica: (slave|master)/.test(l)).join('\n')}`);
    console.log(`database: pgbench -s 15; rounds: ${rounds} (apply, then resync)`);
    console.log(`on the runner: ${times.local!.map((s) => s.toFixed(2)).join(' ')} s (median ${median(times.local!).toFixed(2)} s)`);
    console.log(`over SSH:      ${times.ssh!.map((s) => s.toFixed(2)).join(' ')} s (median ${median(times.ssh!).toFixed(2)} s)`);
    console.log(`ratio ssh / local: ${(median(times.ssh!) / median(times.local!)).toFixed(2)}`);
  } finally {
    await Promise.all(clusters.map((c) => c.destroy()));
    await lab.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
