/**
 * The host layer on the real local shell (no servers): time limits that stop a command and
 * everything it started, secrets that reach a script through stdin only, the minimal
 * environment of host commands, and shell quoting for the SSH transport.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runChecked, runScript } from '../../src/hosts/commands';
import { LocalHost, minimalEnv } from '../../src/hosts/local';
import { shellLine, shellQuote } from '../../src/hosts/quote';

const host = new LocalHost(minimalEnv(process.env));
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dbrepl-cmd-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const alive = (marker: string): string => {
  try {
    return execFileSync('pgrep', ['-f', marker]).toString().trim();
  } catch {
    return '';
  }
};

test('a command over its time limit is stopped with every process it started, and the error says what ran', async () => {
  const marker = `dbrepl-timeout-${process.pid}-${Date.now()}`;
  const t0 = Date.now();
  const argv = ['bash', '-c', `sleep 60 & sleep 61 | cat & exec -a ${marker} sleep 62`];
  await expect(runChecked(host, argv, 'a copy that waits on a lock', { timeoutMs: 400 })).rejects.toThrow(
    /^a copy that waits on a lock on the runner \(local\) did not finish within 0.4 s and was stopped \(it ran: bash -c 'sleep 60 & sleep 61 \| cat & exec -a dbrepl-timeout-/,
  );
  expect(Date.now() - t0).toBeLessThan(3000);
  await new Promise((r) => setTimeout(r, 200));
  expect(alive(marker)).toBe('');
  expect(alive('sleep 61')).toBe('');
});

test('a command within its limit returns its output; a failure names it with the end of stderr', async () => {
  expect(await runChecked(host, ['printf', '%s', 'ok'], 'printf')).toBe('ok');
  await expect(runChecked(host, ['sh', '-c', 'echo one >&2; echo two >&2; exit 3'], 'the stop command of shop/db')).rejects.toThrow(
    'the stop command of shop/db failed on the runner (local) (exit 3): one | two',
  );
  const missing = await host.run(['/nonexistent/program']);
  expect(missing.code).toBe(127);
});

test('secrets reach the script through stdin: not in argv, not in any environment, exactly as given', async () => {
  const secret = `p'a"s$s w\\o\`rd\nline2 ünï ${Date.now()}`;
  const out = path.join(dir, 'out');
  const script = `
printf %s "$pw" > "$1/secret"
tr '\\0' '\\n' < /proc/$$/cmdline > "$1/cmdline"
tr '\\0' '\\n' < /proc/$$/environ > "$1/environ"
sh -c 'tr "\\0" "\\n" < /proc/$$/environ' > "$1/child-environ"
cat > "$1/stdin"`;
  fs.mkdirSync(out);
  await runScript(host, script, [out], 'a script', { secrets: { pw: secret }, input: 'the rest of stdin\n' });
  expect(fs.readFileSync(path.join(out, 'secret'), 'utf8')).toBe(secret);
  expect(fs.readFileSync(path.join(out, 'stdin'), 'utf8')).toBe('the rest of stdin\n');
  for (const f of ['cmdline', 'environ', 'child-environ']) expect(fs.readFileSync(path.join(out, f), 'utf8')).not.toContain(secret.slice(0, 8));
  await expect(runScript(host, 'true', [], 'x', { secrets: { PATH: 'x' } })).rejects.toThrow(/lower-case shell name/);
});

test('host commands get PATH, HOME and the locale of the runner, nothing else', async () => {
  const env = minimalEnv({ PATH: '/usr/bin:/bin', HOME: '/root', LANG: 'C.UTF-8', 'INPUT_GITHUB-TOKEN': 'ghs_x', GITHUB_TOKEN: 'ghs_y', SHOP_PG_PASSWORD: 'pw', RUNNER_TEMP: '/tmp' });
  expect(env).toEqual({ PATH: '/usr/bin:/bin:/usr/sbin:/sbin', HOME: '/root', LANG: 'C.UTF-8' });
  const seen = await runChecked(new LocalHost(env), ['env'], 'env');
  expect(seen.split('\n').filter(Boolean).sort()).toEqual(['HOME=/root', 'LANG=C.UTF-8', 'PATH=/usr/bin:/bin:/usr/sbin:/sbin']);
});

test('shell quoting: every argument comes back whole through /bin/sh', () => {
  const args = ['plain', '', ' ', "it's", '"double"', '$HOME', '`id`', '$(id)', 'a\nb', 'tab\there', '\\', '*', '~root', '-n', 'ünïcødé', "'", "''", 'a;b|c&d>e<f'];
  const printed = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${shellLine(args)}`]).toString();
  expect(printed.split('\0').slice(0, -1)).toEqual(args);
  expect(shellQuote('simple-arg_1.2:3/x')).toBe('simple-arg_1.2:3/x');
  expect(() => shellQuote('nul\0')).toThrow(/NUL/);
});

test('stderr lines reach a progress callback as they come (\\r-redrawn meters included)', async () => {
  const seen: string[] = [];
  await runChecked(host, ['sh', '-c', 'printf "  10/100 kB (10%%)\\r  50/100 kB (50%%)\\r" >&2; sleep 0.2; printf "100/100 kB (100%%)\\ndone\\n" >&2'], 'a meter', { progress: (l) => seen.push(l) });
  expect(seen).toEqual(['10/100 kB (10%)', '50/100 kB (50%)', '100/100 kB (100%)', 'done']);
});
