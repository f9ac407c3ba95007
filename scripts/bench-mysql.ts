/**
 * Benchmark: enabling a MariaDB slave of a ~200 MB database with dbrepl, next to
 * `mariadb-dump | mariadb` alone on the same data, side by side in one run; and the
 * longest stall a writer on the master sees while dbrepl enables.
 * Usage: npm run bench:mysql [-- ROUNDS]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { stringify } from 'yaml';
import { MariaServer, startMariaDB } from '../test/support/mariadb';

const rounds = Number(process.argv[2] ?? 2);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timedShell(script: string, env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', `set -o pipefail\n${script}`], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main(): Promise<void> {
  const servers: MariaServer[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-bench-my-'));
  try {
    const [master, slave] = await Promise.all([startMariaDB({ settings: { 'innodb-buffer-pool-size': '512M' } }), startMariaDB({ settings: { 'innodb-buffer-pool-size': '512M' } })]);
    servers.push(master, slave);
    await master.query('CREATE DATABASE shop');
    await master.query('CREATE TABLE shop.big (id INT PRIMARY KEY, pad VARCHAR(255)) ENGINE=InnoDB');
    await master.query(`INSERT INTO shop.big SELECT seq, REPEAT('x', 230) FROM shop.seq_1_to_800000`);
    await master.query('CREATE TABLE shop.live (id INT AUTO_INCREMENT PRIMARY KEY, at BIGINT) ENGINE=InnoDB');
    await master.query('ANALYZE TABLE shop.big');
    const [size] = await master.query<any>(`SELECT ROUND(SUM(data_length + index_length) / 1048576) AS mb FROM information_schema.TABLES WHERE table_schema = 'shop'`);
    const server = (s: MariaServer, v: string) => ({ engine: 'mysql', host: s.host, port: s.port, user: 'admin', password: `\${${v}}`, service: s.service, options_file: s.dbreplOptionsFile });
    fs.writeFileSync(path.join(dir, 'replication.yml'), stringify({
      version: 1,
      defaults: { replication: { user: 'replicator', password: '${REPL}' } },
      applications: { app: { servers: { main: server(master, 'M'), replica: server(slave, 'S') } } },
      replications: [{ master: 'app/main', slave: 'app/replica' }],
    }));
    const env = { ...process.env, M: master.password, S: slave.password, REPL: randomBytes(8).toString('hex') };
    const cli = path.resolve('dist/cli.js');
    const alone: number[] = [];
    const enable: number[] = [];
    const stalls: number[] = [];
    const asRoot = (sql: string) => spawnSync('mariadb', ['--no-defaults', `--socket=${slave.socket}`, '--user=root', '-e', sql]);
    for (let i = 0; i < rounds; i++) {
      // The plain copy needs a slave that is not replicating (as dbrepl prepares it itself).
      asRoot('STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0');
      alone.push(timedShell(
        `MYSQL_PWD="$M" mariadb-dump --no-defaults -h 127.0.0.1 -P ${master.port} -u admin --single-transaction --gtid --master-data=1 --all-databases --routines --events --triggers --hex-blob --quick | MYSQL_PWD="$S" mariadb --no-defaults -h 127.0.0.1 -P ${slave.port} -u admin --binary-mode`,
        env,
      ));
      // The plain copy left the master's users on the slave: give it its admin login back.
      asRoot(`FLUSH PRIVILEGES; ALTER USER 'admin'@'%' IDENTIFIED BY '${slave.password}'`);
      const conn = await createConnection({ host: master.host, port: master.port, user: 'admin', password: master.password });
      let stop = false;
      let longest = 0;
      let last = Date.now();
      const writer = (async () => {
        while (!stop) {
          await conn.query('INSERT INTO shop.live (at) VALUES (?)', [Date.now()]);
          const now = Date.now();
          longest = Math.max(longest, now - last);
          last = now;
        }
      })();
      const t0 = process.hrtime.bigint();
      const args = i === 0 ? ['apply'] : ['resync', '--pair', 'app/replica'];
      // Asynchronous: the writer above shares this process's event loop.
      const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [cli, ...args, '-c', path.join(dir, 'replication.yml')], { env });
        let stderr = '';
        child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
        child.stdout.resume();
        child.on('close', (status) => resolve({ status, stderr }));
      });
      enable.push(Number(process.hrtime.bigint() - t0) / 1e9);
      stop = true;
      await writer;
      await conn.end();
      if (r.status !== 0) throw new Error(`dbrepl failed: ${r.stderr}`);
      stalls.push(longest);
      if (i === rounds - 1) console.log(`steps of the last run:\n${r.stderr.split('\n').filter((l) => l.startsWith('  ')).join('\n')}`);
      for (const f of fs.readdirSync(path.dirname(slave.dataDir))) if (f.includes('.dbrepl-') && f.endsWith('.sql.gz')) fs.rmSync(path.join(path.dirname(slave.dataDir), f));
    }
    console.log(`database size: ${size!.mb} MB; rounds: ${rounds}`);
    console.log(`mariadb-dump | mariadb alone: ${alone.map((s) => s.toFixed(2)).join(' ')} s (median ${median(alone).toFixed(2)} s)`);
    console.log(`dbrepl enable/resync:         ${enable.map((s) => s.toFixed(2)).join(' ')} s (median ${median(enable).toFixed(2)} s)`);
    console.log(`ratio enable / dump|load:     ${(median(enable) / median(alone)).toFixed(2)}`);
    console.log(`longest write stall on the master during enable: ${stalls.map((s) => `${s} ms`).join(', ')}`);
  } finally {
    await Promise.all(servers.map((s) => s.destroy()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
