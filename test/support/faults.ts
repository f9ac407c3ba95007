/**
 * The fault suite: real local servers, the committed bundle run as its own process, and
 * the faults a production run meets. Each scenario ends with a row: how many runs it took
 * to converge, what was verified (the master's data intact, the slave equal to it, the
 * slave's previous data on disk), and the result. `npm run faults` runs them all and prints
 * the table; test/integration/faults.int.test.ts runs a part of it in CI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CliExit, CliProcess, stepStarted } from './cli-process';
import { SECRETS, stateDirOf, tempDir, writeYaml } from './common';
import { MariaServer, startMariaDB } from './mariadb';
import { PgCluster, startPostgres } from './postgres';
import { RedisServer, startRedis } from './redis';
import { MongoLab, MongoNode, mongoServer } from './mongo';
import { mariaServer, pgServer, redisServer } from './servers-yaml';
import { eventually, sh, sleep } from './sh';

export interface Row {
  scenario: string;
  runs: number;
  verified: string;
  result: 'pass' | 'FAIL';
  seconds: number;
  detail?: string;
}

type EngineName = 'postgresql' | 'mysql' | 'redis' | 'mongodb';
/** A MongoDB node of the replica-set simulator, as the lab handles servers (no login: the simulator has no authentication). */
type MongoServer = MongoNode & { password: string; destroy(): Promise<void> };
type Server = PgCluster | MariaServer | RedisServer | MongoServer;

/** What a scenario needs to know of an engine: its servers, some data, and how to check it. */
interface Adapter {
  engine: EngineName;
  start(): Promise<[Server, Server]>;
  serverYaml(s: Server, passwordVar: string): Record<string, unknown>;
  /** The master's data (a table or keys large enough that a copy takes a moment) and the slave's own. */
  seed(master: Server, slave: Server): Promise<void>;
  /** One more write on the master; returns how many marks it has. */
  mark(master: Server): Promise<number>;
  marks(s: Server): Promise<number>;
  /** What must not change on the master whatever happens to its slave. */
  fingerprint(master: Server): Promise<string>;
  /** The slave's own data, kept somewhere on disk after it was replaced. */
  ownDataKept(slave: Server): Promise<boolean>;
  /** The slave accepts a write of its own. */
  writable(slave: Server): Promise<boolean>;
  /** The copies of previous data kept next to the slave's (one more means it was rebuilt). */
  copies(slave: Server): string[];
  /** Log text of the step that copies the master's data. */
  copyStep: string;
  /** Before a test restarts the master: what its service would do on a clean shutdown (Redis test servers save no RDB on their own). */
  beforeRestart?(master: Server): Promise<void>;
}

const pgQ = async (s: Server, q: string): Promise<string> => String(Object.values((await (s as PgCluster).query(q))[0] ?? {})[0]);
const myQ = async (s: Server, q: string): Promise<string> => String(Object.values((await (s as MariaServer).query(q))[0] ?? {})[0]);
const rd = (s: Server): RedisServer => s as RedisServer;
const mg = (s: Server): MongoServer => s as MongoServer;

function keptCopies(base: string, suffix: string): string[] {
  const dir = path.dirname(base);
  const prefix = `${path.basename(base)}.dbrepl-`;
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith(suffix) && !f.endsWith('-lock')).map((f) => path.join(dir, f)) : [];
}

const ADAPTERS: Record<EngineName, (password: string) => Adapter> = {
  postgresql: (password) => ({
    engine: 'postgresql',
    start: async () => [await startPostgres({ password }), await startPostgres({ password })],
    serverYaml: (s, v) => pgServer(s as PgCluster, v),
    seed: async (m, s) => {
      await pgQ(m, `CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 30) AS v FROM generate_series(1, 80000) g`);
      await pgQ(m, 'CREATE TABLE marks (id serial PRIMARY KEY)');
      await pgQ(s, `CREATE TABLE own_data AS SELECT 'kept by the slave' AS v`);
    },
    mark: async (m) => {
      await pgQ(m, 'INSERT INTO marks DEFAULT VALUES');
      return Number(await pgQ(m, 'SELECT count(*) FROM marks'));
    },
    marks: async (s) => Number(await pgQ(s, 'SELECT count(*) FROM marks')),
    fingerprint: async (m) => `${await pgQ(m, 'SELECT count(*) FROM big')} rows, md5 ${await pgQ(m, 'SELECT md5(string_agg(md5(v), \'\' ORDER BY id)) FROM big')}`,
    // The moved-aside data directory: the slave's own table is in it (as files; found by its name in the catalog files is not robust, so by PG_VERSION and size).
    copies: (s) => keptCopies((s as PgCluster).dataDir, ''),
    ownDataKept: async (s) => keptCopies((s as PgCluster).dataDir, '').some((d) => fs.existsSync(path.join(d, 'PG_VERSION'))),
    writable: async (s) => {
      await pgQ(s, 'CREATE TABLE IF NOT EXISTS after_promotion (v text)');
      await pgQ(s, `INSERT INTO after_promotion VALUES ('written on the promoted slave')`);
      return true;
    },
    copyStep: 'slave: pg_basebackup',
  }),
  mysql: () => ({
    engine: 'mysql',
    start: async () => [await startMariaDB(), await startMariaDB()],
    serverYaml: (s, v) => mariaServer(s as MariaServer, v),
    seed: async (m, s) => {
      await myQ(m, 'CREATE DATABASE shop');
      await myQ(m, 'CREATE TABLE shop.big (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB');
      await myQ(m, 'INSERT INTO shop.big SELECT seq, REPEAT(MD5(seq), 30) FROM mysql.seq_1_to_30000');
      await myQ(m, 'CREATE TABLE shop.marks (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB');
      await myQ(s, 'CREATE DATABASE own_data');
      await myQ(s, `CREATE TABLE own_data.kept (v VARCHAR(50)) ENGINE=InnoDB`);
      await myQ(s, `INSERT INTO own_data.kept VALUES ('kept by the slave')`);
    },
    mark: async (m) => {
      await myQ(m, 'INSERT INTO shop.marks VALUES ()');
      return Number(await myQ(m, 'SELECT COUNT(*) FROM shop.marks'));
    },
    marks: async (s) => Number(await myQ(s, 'SELECT COUNT(*) FROM shop.marks').catch(() => '-1')),
    fingerprint: async (m) => `${await myQ(m, 'SELECT COUNT(*) FROM shop.big')} rows, checksum ${String((await (m as MariaServer).query('CHECKSUM TABLE shop.big'))[0]!.Checksum)}`,
    copies: (s) => keptCopies((s as MariaServer).dataDir, '.sql.gz'),
    ownDataKept: async (s) => {
      for (const f of keptCopies((s as MariaServer).dataDir, '.sql.gz')) {
        if ((await sh('sh', ['-c', `gunzip -c '${f}' | grep -c 'kept by the slave'`], { allowFail: true })).stdout.trim() !== '0') return true;
      }
      return false;
    },
    writable: async (s) => {
      await myQ(s, 'CREATE TABLE IF NOT EXISTS shop.after_promotion (v VARCHAR(50))');
      await myQ(s, `INSERT INTO shop.after_promotion VALUES ('written on the promoted slave')`);
      return true;
    },
    // MariaDB on one host with service commands: the physical copy (mariabackup streamed into mbstream).
    copyStep: 'master host: mariabackup --backup --stream=mbstream',
  }),
  redis: () => ({
    engine: 'redis',
    // As their own user (as systemd runs them): a link cut can then single out the replica's own connections.
    start: async () => [await startRedis({ user: 'redis' }), await startRedis({ user: 'redis' })],
    serverYaml: (s, v) => redisServer(s as RedisServer, v),
    seed: async (m, s) => {
      await rd(m).call('EVAL', "for i=1,30000 do redis.call('SET', 'big:' .. i, string.rep('x', 200)) end", 0);
      await rd(s).call('SET', 'own_data', 'kept by the slave');
      await rd(s).call('SAVE');
    },
    mark: async (m) => Number(await rd(m).call('INCR', 'marks')),
    marks: async (s) => Number((await rd(s).call('GET', 'marks')) ?? 0),
    fingerprint: async (m) => `${String(await rd(m).call('EVAL', "return #redis.call('KEYS', 'big:*')", 0))} keys, big:30000 ${String(await rd(m).call('STRLEN', 'big:30000'))} bytes`,
    copies: (s) => keptCopies(`${(s as RedisServer).base}/dump`, '.rdb'),
    ownDataKept: async (s) => keptCopies(`${(s as RedisServer).base}/dump`, '.rdb').some((f) => fs.readFileSync(f).includes('kept by the slave')),
    writable: async (s) => (await rd(s).call('SET', 'after_promotion', 'written on the promoted slave')) === 'OK',
    copyStep: 'slave: wait until the full sync has finished',
    // A sync in progress forks a BGSAVE: SAVE is refused until it is done.
    beforeRestart: async (m) => void (await eventually(async () => (await rd(m).call('SAVE')) === 'OK', 30_000, 'SAVE on the master')),
  }),
  // The replica-set SIMULATOR (test/support/mongo-sim): its nodes live in this process, the CLI's
  // service commands reach them through its control port.
  mongodb: () => {
    const lab = new MongoLab();
    let open = 0;
    const wrap = (n: MongoNode): MongoServer =>
      Object.assign(n, {
        password: randomBytes(8).toString('hex'),
        destroy: async () => {
          if (--open === 0) await lab.close();
        },
      });
    return {
      engine: 'mongodb',
      start: async () => {
        await lab.open();
        open = 2;
        return [wrap(await lab.node()), wrap(await lab.node())];
      },
      serverYaml: (s) => mongoServer(mg(s)),
      seed: async (m, s) => {
        await mg(m).insert('shop', 'big', Array.from({ length: 3000 }, (_, i) => ({ _id: i, v: 'x'.repeat(100) })));
        await mg(s).insert('own_data', 'kept', [{ _id: 1, v: 'kept by the slave' }]);
      },
      mark: async (m) => {
        const n = (await mg(m).count('shop', 'marks')) + 1;
        await mg(m).insert('shop', 'marks', [{ _id: n }]);
        return n;
      },
      marks: async (s) => mg(s).count('shop', 'marks').catch(() => -1),
      fingerprint: async (m) => `${await mg(m).count('shop', 'big')} documents in shop.big`,
      copies: (s) => keptCopies(mg(s).dbPath, ''),
      ownDataKept: async (s) => keptCopies(mg(s).dbPath, '').some((d) => fs.existsSync(`${d}/sim-data.json`) && fs.readFileSync(`${d}/sim-data.json`, 'utf8').includes('kept by the slave')),
      writable: async (s) => {
        await mg(s).insert('shop', 'after_promotion', [{ v: 'written on the former member' }]);
        return true;
      },
      copyStep: 'master: wait until ',
    };
  },
};

/** One engine's pair and everything a scenario does with it. */
export class FaultLab {
  readonly a: Adapter;
  master!: Server;
  slave!: Server;
  private dir = '';
  private env: NodeJS.ProcessEnv = {};
  readonly pair = 'app/replica';
  private masterBefore = '';

  constructor(engine: EngineName) {
    const password = randomBytes(10).toString('hex');
    this.a = ADAPTERS[engine](password);
    SECRETS.add(password);
  }

  async start(): Promise<void> {
    [this.master, this.slave] = await this.a.start();
    for (const s of [this.master, this.slave]) SECRETS.add(s.password);
    this.dir = tempDir(`dbrepl-faults-${this.a.engine}-`);
    const repl = `repl-${randomBytes(8).toString('hex')}`;
    SECRETS.add(repl);
    this.env = { ...process.env, M_PW: this.master.password, S_PW: this.slave.password, REPL_PW: repl };
    await this.a.seed(this.master, this.slave);
    this.write('enabled');
    this.masterBefore = await this.a.fingerprint(this.master);
  }

  async stop(): Promise<void> {
    await Promise.all([this.master, this.slave].filter(Boolean).map((s) => s.destroy()));
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  write(state: 'enabled' | 'disabled'): string {
    return writeYaml(this.dir, {
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL_PW}' } },
      applications: { app: { servers: { main: this.a.serverYaml(this.master, 'M_PW'), replica: this.a.serverYaml(this.slave, 'S_PW') } } },
      replications: [{ master: 'app/main', slave: 'app/replica', state, catchup_timeout: '60s' }],
    });
  }

  cli(...args: string[]): CliProcess {
    return new CliProcess([...args, '-c', path.join(this.dir, 'replication.yml')], this.env, this.dir);
  }

  async runCli(...args: string[]): Promise<CliExit> {
    return this.cli(...args).done;
  }

  /** The step texts of the plan for the pair (what the log prints as each starts). */
  async planSteps(): Promise<string[]> {
    const r = await this.runCli('plan', '--json');
    return (JSON.parse(r.stdout).pairs[0].steps as string[]).filter((s) => !s.startsWith('on a failure') && !s.startsWith('env:'));
  }

  async state(): Promise<string> {
    const r = await this.runCli('status', '--json');
    try {
      return JSON.parse(r.stdout).pairs[0].state as string;
    } catch {
      return `no status (${r.stderr.slice(-200)})`;
    }
  }

  /** Runs `args` until it exits 0 and `done` holds; returns how many runs it took. */
  async converge(args: string[], done: () => Promise<boolean>, max = 4): Promise<number> {
    for (let i = 1; i <= max; i++) {
      const r = await this.runCli(...args);
      if (r.code === 0 && (await done().catch(() => false))) return i;
      if (i === max) throw new Error(`did not converge after ${max} runs of ${args.join(' ')}; last exit ${r.code}: ${r.stderr.slice(-1500)}`);
      await sleep(1000);
    }
    return max;
  }

  /** Starts `args`, SIGKILLs it when the log says `stepText` started, and waits until the commands it left are stopped. */
  async killAt(args: string[], stepText: string): Promise<void> {
    const p = this.cli(...args);
    await p.waitFor(stepStarted(this.pair, stepText), 120_000);
    p.kill('SIGKILL');
    await p.done;
    // Its host commands stop by themselves within a few seconds (their watchdog).
    await sleep(3000);
  }

  lockDir(): string {
    return `${stateDirOf(this.a.engine, this.slave.port)}/lock`;
  }

  /** After an enable or resync: the master as it was, the slave equal to it, the slave's own data kept, no lock left. */
  async verifyReplicating(): Promise<string> {
    const n = await this.a.mark(this.master);
    await eventually(async () => (await this.a.marks(this.slave)) === n, 60_000, `mark ${n} on the slave`);
    const fp = await this.a.fingerprint(this.master);
    if (fp !== this.masterBefore) throw new Error(`the master's data changed: ${fp} (was ${this.masterBefore})`);
    if (!(await this.a.ownDataKept(this.slave))) throw new Error("the slave's own data is not on disk");
    if (fs.existsSync(this.lockDir())) throw new Error(`${this.lockDir()} is left`);
    return `master intact (${fp}); slave has mark ${n}; slave's own data kept`;
  }

  /** After a disable: the slave writable with every mark the master had, the master intact. */
  async verifyStandalone(): Promise<string> {
    const n = await this.a.marks(this.master);
    const got = await this.a.marks(this.slave);
    if (got !== n) throw new Error(`the promoted slave has ${got} marks, the master ${n}`);
    await this.a.writable(this.slave);
    const fp = await this.a.fingerprint(this.master);
    if (fp !== this.masterBefore) throw new Error(`the master's data changed: ${fp}`);
    if (fs.existsSync(this.lockDir())) throw new Error(`${this.lockDir()} is left`);
    return `slave writable with all ${n} marks; master intact`;
  }
}

async function row(scenario: string, fn: () => Promise<{ runs: number; verified: string }>): Promise<Row> {
  const t0 = Date.now();
  try {
    const { runs, verified } = await fn();
    return { scenario, runs, verified, result: 'pass', seconds: (Date.now() - t0) / 1000 };
  } catch (err) {
    return { scenario, runs: 0, verified: '-', result: 'FAIL', seconds: (Date.now() - t0) / 1000, detail: (err as Error).message.slice(0, 2000) };
  }
}

/** SIGKILL of the CLI at `points` of enable, resync and disable, each followed by re-runs until it converges. */
export async function killScenarios(lab: FaultLab, points: { enable: number[]; disable: number[] }, report: (r: Row) => void): Promise<void> {
  const e = lab.a.engine;
  // The pair starts disabled (slave standalone, with data of its own).
  const enableSteps = await lab.planSteps();
  for (const i of points.enable) {
    const step = enableSteps[Math.min(i, enableSteps.length - 1)];
    if (!step) {
      report({ scenario: `${e}: enable, SIGKILL at step ${i + 1}`, runs: 0, verified: '-', result: 'FAIL', seconds: 0, detail: 'the plan has no enable steps' });
      continue;
    }
    report(
      await row(`${e}: enable, SIGKILL at step ${enableSteps.indexOf(step) + 1}/${enableSteps.length} (${step.slice(0, 40)}...)`, async () => {
        lab.write('enabled');
        await lab.killAt(['apply'], step);
        const runs = await lab.converge(['apply'], async () => (await lab.state()) === 'replicating');
        const verified = await lab.verifyReplicating();
        // Back to standalone for the next point.
        lab.write('disabled');
        await lab.converge(['apply'], async () => (await lab.state()) === 'standalone');
        return { runs, verified };
      }),
    );
  }
  report(
    await row(`${e}: resync, SIGKILL during the copy`, async () => {
      lab.write('enabled');
      await lab.converge(['apply'], async () => (await lab.state()) === 'replicating');
      await lab.killAt(['resync', '--pair', lab.pair], lab.a.copyStep);
      const runs = await lab.converge(['resync', '--pair', lab.pair], async () => (await lab.state()) === 'replicating');
      return { runs, verified: await lab.verifyReplicating() };
    }),
  );
  lab.write('disabled');
  const disableSteps = await lab.planSteps();
  for (const i of points.disable) {
    const step = disableSteps[Math.min(i, disableSteps.length - 1)];
    if (!step) {
      report({ scenario: `${e}: disable, SIGKILL at step ${i + 1}`, runs: 0, verified: '-', result: 'FAIL', seconds: 0, detail: `the plan has no disable steps (the pair is ${await lab.state()})` });
      continue;
    }
    report(
      await row(`${e}: disable, SIGKILL at step ${disableSteps.indexOf(step) + 1}/${disableSteps.length} (${step.slice(0, 40)}...)`, async () => {
        lab.write('enabled');
        await lab.converge(['apply'], async () => (await lab.state()) === 'replicating');
        await lab.a.mark(lab.master);
        await eventually(async () => (await lab.a.marks(lab.slave)) === (await lab.a.marks(lab.master)), 60_000, 'the slave to catch up');
        lab.write('disabled');
        await lab.killAt(['apply'], step);
        const runs = await lab.converge(['apply'], async () => (await lab.state()) === 'standalone');
        return { runs, verified: await lab.verifyStandalone() };
      }),
    );
  }
}

/** The master restarted while the slave copies from it: the copy fails, is rolled back, and a re-run converges. */
export async function masterRestartMidCopy(lab: FaultLab): Promise<Row> {
  return row(`${lab.a.engine}: master restarted in the middle of a resync's copy`, async () => {
    lab.write('enabled');
    await lab.converge(['apply'], async () => (await lab.state()) === 'replicating');
    const p = lab.cli('resync', '--pair', lab.pair);
    await p.waitFor(stepStarted(lab.pair, lab.a.copyStep), 120_000);
    await lab.a.beforeRestart?.(lab.master);
    await lab.master.stop();
    await lab.master.start();
    const first = await p.done;
    const runs = 1 + (await lab.converge(['resync', '--pair', lab.pair], async () => (await lab.state()) === 'replicating'));
    return { runs, verified: `first run exit ${first.code}; ${await lab.verifyReplicating()}` };
  });
}

/** Two applies at once on a pair to enable: one does it, the other waits for the lock and finds nothing left to do. */
export async function twoApplies(lab: FaultLab): Promise<Row> {
  return row(`${lab.a.engine}: two applies at once`, async () => {
    lab.write('disabled');
    await lab.converge(['apply'], async () => (await lab.state()) === 'standalone');
    lab.write('enabled');
    const [a, b] = await Promise.all([lab.runCli('apply', '--json', '--lock-timeout', '300s'), lab.runCli('apply', '--json', '--lock-timeout', '300s')]);
    const results = [a, b].map((r) => (r.code === 0 ? (JSON.parse(r.stdout).pairs[0].result as string) : `exit ${r.code}: ${r.stderr.slice(-300)}`));
    const done = results.filter((r) => r === 'done').length;
    const waited = results.filter((r) => r === 'skipped').length;
    if (done !== 1 || waited !== 1) throw new Error(`results: ${results.join(' / ')}`);
    return { runs: 2, verified: `one enable done, the other found it already as desired; ${await lab.verifyReplicating()}` };
  });
}

/** A disable started while a resync copies: it waits for the resync's lock, then disables; nothing written to the promoted slave is lost. */
export async function disableDuringResync(lab: FaultLab): Promise<Row> {
  return row(`${lab.a.engine}: disable started during a resync`, async () => {
    lab.write('enabled');
    await lab.converge(['apply'], async () => (await lab.state()) === 'replicating');
    const resync = lab.cli('resync', '--pair', lab.pair, '--lock-timeout', '300s');
    await resync.waitFor(stepStarted(lab.pair, lab.a.copyStep), 120_000);
    lab.write('disabled');
    const disable = lab.cli('apply', '--json', '--lock-timeout', '300s');
    const [r1, r2] = await Promise.all([resync.done, disable.done]);
    if (r2.code !== 0) throw new Error(`the disable failed: ${r2.stderr.slice(-800)}`);
    const waited = /waiting for the lock of app\/replica/.test(r2.stderr) ? 'waited for the lock, then ' : '';
    await lab.a.writable(lab.slave);
    return { runs: 2, verified: `resync exit ${r1.code}; the disable ${waited}done; ${await lab.verifyStandalone()}` };
  });
}

/**
 * A short cut of the link (the slave's own connections to its master dropped) while the master
 * takes a write a second (an idle link is not noticed by MariaDB before slave_net_timeout):
 * reconnecting, not rebuilt; healed when it returns, every write on the slave.
 */
export async function linkCut(lab: FaultLab, cut: () => Promise<void>, heal: () => Promise<void>, seconds: number): Promise<Row> {
  return row(`${lab.a.engine}: link cut for ${seconds} s`, async () => {
    lab.write('enabled');
    await lab.converge(['apply'], async () => (await lab.state()) === 'replicating');
    const copiesBefore = lab.a.copies(lab.slave).length;
    await cut();
    let during = '';
    try {
      for (let i = 0; i < seconds; i++) {
        await lab.a.mark(lab.master);
        await sleep(1000);
      }
      during = await lab.state();
      const plan = JSON.parse((await lab.runCli('plan', '--json')).stdout).pairs[0];
      if (during !== 'reconnecting') throw new Error(`during the cut the pair is ${during}, not reconnecting`);
      if (plan.action !== 'none') throw new Error(`during the cut the plan would ${plan.action}`);
    } finally {
      await heal();
    }
    const runs = await lab.converge(['apply'], async () => (await lab.state()) === 'replicating');
    if (lab.a.copies(lab.slave).length !== copiesBefore) throw new Error(`the slave was rebuilt (${lab.a.copies(lab.slave).length - copiesBefore} new copies of its data)`);
    return { runs, verified: `reconnecting during the cut, no rebuild; ${await lab.verifyReplicating()}` };
  });
}

export function table(rows: Row[]): string {
  const head = ['scenario', 'runs to converge', 'data verified', 'result'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.scenario} | ${r.runs || '-'} | ${r.verified.replace(/\|/g, '/')} | ${r.result} (${r.seconds.toFixed(1)} s) |`);
  return lines.join('\n');
}
