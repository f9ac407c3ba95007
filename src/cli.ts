#!/usr/bin/env node
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs, ParseArgsConfig } from 'node:util';
import { version } from '../package.json';
import { parseDuration } from './config/schema';
import { preserved, run, Command, PreservedResult } from './core';
import { desiredEnv, toDotenv } from './env/compute';
import { ConfigError, ConfigIssue, DbreplError, formatIssue, UsageError, messageOf } from './errors';
import { stderrLogger } from './log';
import type { Mode } from './plan/diff';
import { asDesired, EnvMap } from './plan/types';
import { COLOR, copiesText, humanAge, PLAIN, planText, statusText } from './report/render';
import { SecretRegistry } from './secrets';
import { cancellation } from './signals';
import { loadTopology, onlyError, selectApplications, unsetForEnv } from './topology';
import type { Topology } from './model';
import { humanBytes } from './util/bytes';

interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's name in help (string flags). */
  arg?: string;
  help: string;
}

interface CommandSpec {
  /** Usage after `dbrepl `: exactly what the parser below accepts. */
  usage: string;
  about: string;
  flags: Record<string, Flag>;
  /** What positional arguments mean, when the command takes any. */
  positionals?: string;
}

const CONFIG: Flag = { type: 'string', short: 'c', arg: 'FILE', help: 'the replication.yml to read (default: ./replication.yml)' };
const ONLY: Flag = { type: 'string', arg: 'NAMES', help: 'comma-separated pair or application names: only those pairs (an application: every pair with a side in it)' };
const JSON_FLAG: Flag = { type: 'boolean', help: 'print exactly one JSON document on stdout, errors included; logs and progress go to stderr' };
const PARALLEL: Flag = { type: 'string', arg: 'N', help: 'servers inspected and pairs changed at once (default 4)' };
const FORCE: Flag = { type: 'boolean', help: 'go ahead where a check refuses only what this flag may override (each such refusal says what could be lost)' };
const LOCK_TIMEOUT: Flag = { type: 'string', arg: 'DURATION', help: "how long to wait for another run's lock on a slave or a master, e.g. 5m (default 0: fail at once, naming the holder)" };

const FENCE: Flag = { type: 'boolean', help: 'every disable fences its master first: read-only before the slave is promoted, then one writer checked (as fence: true on each pair)' };

const COMMANDS: Record<string, CommandSpec> = {
  plan: {
    usage: 'plan [-c FILE] [--only NAMES] [--json] [--detailed-exitcode] [--fence] [--max-parallel N]',
    about: 'Inspect every server, diff the live replication against the file, run every check that changes nothing, and print the plan. Changes nothing.',
    flags: { config: CONFIG, only: ONLY, json: JSON_FLAG, 'detailed-exitcode': { type: 'boolean', help: 'exit 2 when the plan has changes (0: nothing to do)' }, fence: FENCE, 'max-parallel': PARALLEL },
  },
  apply: {
    usage: 'apply [-c FILE] [--only NAMES] [--json] [--lock-timeout DURATION] [--force] [--fence] [--max-parallel N]',
    about:
      'Plan, then enable, disable or resync each pair that needs it; verify by inspecting again; print what was done. ' +
      'SIGINT/SIGTERM stop the running step and roll back what it started; an action a killed run left half-done is rolled back first.',
    flags: {
      config: CONFIG,
      only: ONLY,
      json: JSON_FLAG,
      'lock-timeout': LOCK_TIMEOUT,
      force: FORCE,
      fence: FENCE,
      'max-parallel': PARALLEL,
    },
  },
  status: {
    usage: 'status [-c FILE] [--only NAMES] [--json] [--detailed-exitcode] [--max-parallel N]',
    about: "Each pair's live state and lag, and the copies of previous data kept on each server's host. Changes nothing.",
    flags: {
      config: CONFIG,
      only: ONLY,
      json: JSON_FLAG,
      'detailed-exitcode': { type: 'boolean', help: 'exit 2 when some pair is not as the file wants it and healthy (broken, lagging, reconnecting, other-master, standalone while enabled, replicating while disabled)' },
      'max-parallel': PARALLEL,
    },
  },
  resync: {
    usage: 'resync [-c FILE] (--pair NAME... | --broken) [--json] [--lock-timeout DURATION] [--force] [--max-parallel N]',
    about: 'Rebuild slaves from a fresh backup of their master: the pairs named, or every pair whose slave is broken.',
    flags: {
      config: CONFIG,
      pair: { type: 'string', multiple: true, arg: 'NAME...', help: 'pairs to rebuild: --pair a b, --pair a,b or --pair a --pair b' },
      broken: { type: 'boolean', help: 'rebuild every enabled pair whose slave is broken' },
      json: JSON_FLAG,
      'lock-timeout': LOCK_TIMEOUT,
      force: FORCE,
      'max-parallel': PARALLEL,
    },
    positionals: 'more pair names after --pair',
  },
  env: {
    usage: 'env [-c FILE] [--only NAMES] [--format dotenv|json] [--app NAME | --out DIR]',
    about: "Each application's database environment variables for the topology the file declares (what apply converges to). Reads the file alone; connects to nothing.",
    flags: {
      config: CONFIG,
      only: { ...ONLY, help: 'comma-separated application names, or pair names (their applications)' },
      format: { type: 'string', arg: 'dotenv|json', help: 'dotenv (default): VARIABLE=value lines under "# <application>"; json: {"<application>": {"<VARIABLE>": "<value>"}}' },
      app: { type: 'string', arg: 'NAME', help: "one application's variables only" },
      out: { type: 'string', arg: 'DIR', help: 'write one file per application, DIR/<application>.env (or .json), mode 0600; never two applications in one file' },
    },
  },
  validate: {
    usage: 'validate [-c FILE] [--json]',
    about: 'Check the file: format, keys, references, the topology rules. Reads the file alone; connects to nothing; an unset ${VAR} is a warning.',
    flags: { config: CONFIG, json: JSON_FLAG },
  },
  list: {
    usage: 'list [-c FILE] [--json]',
    about:
      'The applications with their servers and the pairs that belong to them (a pair belongs to its slave\'s application), and, with --json, a GitHub Actions matrix: ' +
      'one job per application, each running --only with that application\'s pairs. Reads the file alone; connects to nothing.',
    flags: { config: CONFIG, json: JSON_FLAG },
  },
  preserved: {
    usage: 'preserved list|remove [-c FILE] [--only NAMES] [--older-than DURATION] [--yes] [--json] [--max-parallel N] [PATH...]',
    about:
      "List or remove the copies of previous data dbrepl kept when it rebuilt a slave (next to the server's data). remove takes the copies older than --older-than, or the PATHs named; " +
      'it removes only with --yes (without, it shows what it would remove), never the newest copy of a server, and refuses any path that is not a copy dbrepl made.',
    flags: {
      config: CONFIG,
      only: ONLY,
      'older-than': { type: 'string', arg: 'DURATION', help: 'copies older than this, e.g. 7d, 12h, 30m' },
      yes: { type: 'boolean', help: 'remove: really remove' },
      json: JSON_FLAG,
      'max-parallel': PARALLEL,
    },
    positionals: 'remove: paths of copies to remove',
  },
};

const EXIT_CODES = 'exit codes: 0 success; 1 error (invalid file, unreachable server, refused pair, failed step); 2 only with --detailed-exitcode (plan: changes; status: some pair not as the file wants it and healthy)';

function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  dbrepl ${c.usage}`);
  return `usage:\n${lines.join('\n')}\n  dbrepl --version | dbrepl COMMAND --help\n${EXIT_CODES}\n`;
}

function commandHelp(spec: CommandSpec): string {
  const rows = Object.entries(spec.flags).map(([k, f]) => [`${f.short ? `-${f.short}, ` : '    '}--${k}${f.arg ? ` ${f.arg}` : ''}`, f.help] as const);
  rows.push(['-h, --help', 'this help']);
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const flags = rows.map(([l, h]) => `  ${l.padEnd(width)}${h}`).join('\n');
  return `usage: dbrepl ${spec.usage}\n\n${spec.about}\n\noptions:\n${flags}\n${spec.positionals ? `arguments: ${spec.positionals}\n` : ''}${EXIT_CODES}\n`;
}

export interface CliIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** stdout is a terminal that takes colour (and NO_COLOR is not set). */
  color?: boolean;
  /** Fires on SIGINT/SIGTERM: the run stops its steps and rolls back. */
  signal?: AbortSignal;
}

type Values = Record<string, string | boolean | string[] | undefined>;

/** Runs one dbrepl command and returns its exit code; never calls process.exit. */
export async function cli(io: CliIo): Promise<number> {
  const secrets = new SecretRegistry();
  const [command, ...rest] = io.argv;
  // Known before parsing, so that even a usage error is one JSON document.
  const json = rest.includes('--json');
  const outJson = (v: unknown): void => io.stdout(secrets.json(v, 2) + '\n');
  try {
    if (!command) {
      io.stderr(usage());
      return 1;
    }
    if (command === '-h' || command === '--help' || command === 'help') {
      io.stdout(usage());
      return 0;
    }
    if (command === '--version' || command === '-V') {
      io.stdout(`dbrepl ${version}\n`);
      return 0;
    }
    const spec = COMMANDS[command];
    if (!spec) throw new UsageError(`unknown command "${command}"; commands: ${Object.keys(COMMANDS).join(', ')} (dbrepl --help)`);
    let args = rest;
    let sub: string | undefined;
    if (command === 'preserved' && rest[0] && !rest[0].startsWith('-')) [sub, ...args] = rest;
    if (args.includes('--help') || args.includes('-h')) {
      io.stdout(commandHelp(spec));
      return 0;
    }
    const options = Object.fromEntries(Object.entries(spec.flags).map(([k, f]) => [k, { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) }]));
    const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: !!spec.positionals, options: options as ParseArgsConfig['options'] });
    return await dispatch(command, sub, values as Values, positionals, io, secrets, json);
  } catch (err) {
    if (json) {
      const issues = err instanceof ConfigError ? err.issues : undefined;
      const code = err instanceof DbreplError ? err.code : (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ? 'USAGE' : 'INTERNAL';
      const error = { code, message: messageOf(err), ...(issues ? { issues } : {}) };
      outJson(command === 'validate' ? { valid: false, error } : { error });
    }
    if (err instanceof ConfigError) {
      for (const i of err.issues) io.stderr(secrets.redact(`error: ${formatIssue(i)}`) + '\n');
    } else if (err instanceof DbreplError) {
      io.stderr(secrets.redact(`error: ${err.message}`) + '\n');
    } else if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      const spec = command ? COMMANDS[command] : undefined;
      io.stderr(`error: ${messageOf(err)}\n${spec ? `usage: dbrepl ${spec.usage}\n(dbrepl ${command} --help for the options)\n` : usage()}`);
    } else {
      io.stderr(secrets.redact(`error: ${messageOf(err)}`) + '\n');
    }
    return 1;
  }
}

async function dispatch(command: string, sub: string | undefined, values: Values, positionals: string[], io: CliIo, secrets: SecretRegistry, json: boolean): Promise<number> {
  const out = (s: string): void => io.stdout(secrets.redact(s));
  const outJson = (v: unknown): void => io.stdout(secrets.json(v, 2) + '\n');
  const log = stderrLogger(secrets, io.stderr);
  const configFile = (values.config as string | undefined) ?? 'replication.yml';
  const configPath = path.resolve(io.cwd, configFile);
  const only = typeof values.only === 'string' ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  const maxParallel = Number(values['max-parallel'] ?? '4');
  if (!Number.isInteger(maxParallel) || maxParallel < 1) throw new UsageError('--max-parallel takes a whole number >= 1');
  const warnUnset = (issues: ConfigIssue[]): void => {
    for (const i of issues) io.stderr(`warning: ${formatIssue(i)}\n`);
  };

  switch (command) {
    case 'validate': {
      const { topology, unset } = loadTopology(configPath, io.env, secrets, { unset: 'warn' });
      warnUnset(unset.map((u) => u.at));
      if (json) {
        outJson({ valid: true, applications: topology.applications.length, servers: topology.servers.size, pairs: topology.pairs.length, warnings: unset.map((u) => formatIssue(u.at)) });
      } else {
        out(`${configFile} is valid: ${topology.applications.length} application(s), ${topology.servers.size} server(s), ${topology.pairs.length} pair(s)${unset.length > 0 ? `; ${unset.length} variable(s) not set (see the warnings)` : ''}\n`);
      }
      return 0;
    }
    case 'list': {
      const { topology, unset } = loadTopology(configPath, io.env, secrets, { unset: 'warn' });
      warnUnset(unset.map((u) => u.at));
      const listing = listTopology(topology);
      if (json) outJson(listing);
      else out(listText(listing));
      return 0;
    }
    case 'env':
      return envCommand(values, io, secrets, configPath, only);
    case 'preserved':
      return preservedCommand(sub, values, positionals, io, secrets, { configPath, only, maxParallel, log }, json);
    default: {
      let mode: Mode = { kind: 'converge' };
      if (command === 'resync') {
        const named = ((values.pair as string[] | undefined) ?? []).concat(positionals).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
        if (positionals.length > 0 && !values.pair) throw new UsageError(`unexpected argument "${positionals[0]}": pair names follow --pair`);
        if (values.broken && named.length > 0) throw new UsageError('resync takes --pair NAME... or --broken, not both');
        if (values.broken) mode = { kind: 'resync-broken' };
        else if (named.length > 0) mode = { kind: 'resync', pairs: new Set(named) };
        else throw new UsageError('resync needs --pair NAME... or --broken');
      }
      const lockTimeoutMs = typeof values['lock-timeout'] === 'string' ? durationFlag(values['lock-timeout'], '--lock-timeout') * 1000 : 0;
      const result = await run(command as Command, { configPath, only, maxParallel, env: io.env, secrets, log, lockTimeoutMs, signal: io.signal, force: values.force === true, fence: values.fence === true }, mode);
      if (command === 'status') {
        if (json) outJson(result.status);
        else out(statusText(result.status));
        if (result.exitCode !== 0) return result.exitCode;
        return values['detailed-exitcode'] && result.status.pairs.some((p) => !asDesired(p)) ? 2 : 0;
      }
      const applied = command === 'apply' || command === 'resync';
      if (json) outJson(result.plan);
      else out(planText(result.plan, applied, io.color ? COLOR : PLAIN));
      if (result.exitCode !== 0) return result.exitCode;
      if (command === 'plan' && values['detailed-exitcode'] && result.plan.changes > 0) return 2;
      return 0;
    }
  }
}

function envCommand(values: Values, io: CliIo, secrets: SecretRegistry, configPath: string, only: string[] | undefined): number {
  const format = (values.format as string | undefined) ?? 'dotenv';
  if (format !== 'dotenv' && format !== 'json') throw new UsageError(`--format takes dotenv or json, not "${format}"`);
  if (values.app && values.out) throw new UsageError('env takes --app NAME (print one application) or --out DIR (one file per application), not both');
  const { topology, unset } = loadTopology(configPath, io.env, secrets, { unset: 'warn' });
  const missing = unsetForEnv(unset);
  if (missing) throw missing;
  for (const u of unset) io.stderr(`warning: ${formatIssue(u.at)}\n`);
  const names = values.app ? [values.app as string] : only;
  const { apps, unknown } = selectApplications(topology, names);
  if (unknown.length > 0) throw onlyError(topology, unknown, values.app ? '--app' : '--only');
  const all = desiredEnv(topology);
  const env: EnvMap = Object.fromEntries(apps.map((a) => [a, all[a] ?? {}]));
  const render = (e: EnvMap): string => (format === 'json' ? JSON.stringify(e, null, 2) + '\n' : toDotenv(e));
  // The variables are the point of this command: printed as they are, not masked.
  if (!values.out) {
    io.stdout(render(env));
    return 0;
  }
  const dir = path.resolve(io.cwd, values.out as string);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const app of apps) {
    const file = path.join(dir, `${app}.${format === 'json' ? 'json' : 'env'}`);
    // Written whole or not at all: a reader never sees half a file.
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, render({ [app]: env[app]! }), { mode: 0o600 });
    fs.renameSync(tmp, file);
    io.stderr(`wrote ${file}\n`);
  }
  return 0;
}

async function preservedCommand(
  sub: string | undefined,
  values: Values,
  positionals: string[],
  io: CliIo,
  secrets: SecretRegistry,
  base: { configPath: string; only: string[] | undefined; maxParallel: number; log: ReturnType<typeof stderrLogger> },
  json: boolean,
): Promise<number> {
  if (sub !== 'list' && sub !== 'remove') throw new UsageError(`preserved takes list or remove${sub ? `, not "${sub}"` : ''}: dbrepl ${COMMANDS.preserved!.usage}`);
  const olderThan = typeof values['older-than'] === 'string' ? durationFlag(values['older-than'], '--older-than') : undefined;
  if (sub === 'list' && positionals.length > 0) throw new UsageError(`preserved list takes no paths ("${positionals[0]}")`);
  if (sub === 'list' && values.yes) throw new UsageError('--yes is for preserved remove');
  if (sub === 'remove' && positionals.length === 0 && olderThan === undefined) throw new UsageError('preserved remove needs --older-than DURATION or the PATHs of copies to remove');
  if (sub === 'remove' && positionals.length > 0 && olderThan !== undefined) throw new UsageError('preserved remove takes --older-than or PATHs, not both');
  const result = await preserved(sub, { ...base, env: io.env, secrets }, { olderThanSeconds: olderThan, paths: positionals, yes: values.yes === true });
  if (json) {
    io.stdout(secrets.json(preservedJson(sub, result), 2) + '\n');
  } else {
    io.stdout(secrets.redact(preservedText(sub, result)));
  }
  for (const e of result.listing.errors) base.log.warn(`${e.server}: cannot list its copies: ${e.error}`);
  return result.exitCode;
}

function durationFlag(text: string, flag: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new UsageError(`${flag} takes a duration such as 7d, 12h or 30m, not "${text}"`);
  }
}

function preservedJson(sub: 'list' | 'remove', r: PreservedResult): unknown {
  const errors = r.listing.errors;
  if (sub === 'list') return { copies: r.listing.copies.map((c) => c.copy), errors };
  const outcome = (server: string, p: string): string | null | undefined => r.removed?.get(`${server}\0${p}`);
  return {
    dry_run: r.dryRun,
    removed: r.dryRun ? [] : r.chosen.filter((c) => outcome(c.server, c.path) === null),
    would_remove: r.dryRun ? r.chosen : [],
    failed: r.chosen.filter((c) => typeof outcome(c.server, c.path) === 'string').map((c) => ({ ...c, error: outcome(c.server, c.path) })),
    refused: r.refused,
    errors,
  };
}

function preservedText(sub: 'list' | 'remove', r: PreservedResult): string {
  const lines: string[] = [];
  if (sub === 'list') {
    if (r.listing.copies.length === 0) lines.push('No preserved copies found.');
    else lines.push(...copiesText(r.listing.copies.map((c) => c.copy)));
    const total = r.listing.copies.reduce((n, c) => n + c.copy.bytes, 0);
    if (total > 0) lines.push(`${r.listing.copies.length} copies, ${humanBytes(total)}.`);
    return lines.join('\n') + '\n';
  }
  for (const p of r.refused) lines.push(`refused: ${p.path}: ${p.error}`);
  for (const c of r.chosen) {
    const what = `${c.path} (${c.server}, ${humanBytes(c.bytes)}, ${humanAge(c.age_seconds)} old)`;
    if (r.dryRun) lines.push(`would remove ${what}`);
    else {
      const error = r.removed?.get(`${c.server}\0${c.path}`);
      lines.push(error ? `failed to remove ${what}: ${error}` : `removed ${what}`);
    }
  }
  if (r.chosen.length === 0 && r.refused.length === 0) lines.push('Nothing to remove (the newest copy of each server is always kept).');
  if (r.dryRun && r.chosen.length > 0) lines.push(`Nothing removed: run again with --yes to remove these ${r.chosen.length} copies.`);
  return lines.join('\n') + '\n';
}

if (require.main === module) {
  void cli({
    signal: cancellation((s) => process.stderr.write(s)),
    argv: process.argv.slice(2),
    env: process.env,
    cwd: process.cwd(),
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    color: process.stdout.isTTY === true && !process.env.NO_COLOR,
  }).then((code) => {
    process.exitCode = code;
  });
}

/**
 * `dbrepl list`: what a fleet too large for one job is sharded by. Each pair belongs to its
 * slave's application (a cross-application pair runs in the job of the application whose
 * server it rebuilds); `matrix.include` has one entry per application with pairs, whose
 * `only` is those pairs' names for `--only` (overlapping jobs on one master are ordered by
 * the master's lock).
 */
export function listTopology(topology: Topology): ListResult {
  const applications = topology.applications.map((a) => ({
    name: a.name,
    environment: a.environment ?? null,
    servers: a.servers.map((s) => ({ name: s.ref, engine: s.engine, host: s.host, port: s.port })),
    pairs: topology.pairs.filter((p) => p.slave.app === a.name).map((p) => p.name),
  }));
  return {
    applications,
    pairs: topology.pairs.map((p) => ({ name: p.name, engine: p.engine, master: p.master.ref, slave: p.slave.ref, desired: p.desired, application: p.slave.app })),
    matrix: { include: applications.filter((a) => a.pairs.length > 0).map((a) => ({ application: a.name, only: a.pairs.join(',') })) },
  };
}

export interface ListResult {
  applications: Array<{ name: string; environment: string | null; servers: Array<{ name: string; engine: string; host: string; port: number }>; pairs: string[] }>;
  pairs: Array<{ name: string; engine: string; master: string; slave: string; desired: string; application: string }>;
  matrix: { include: Array<{ application: string; only: string }> };
}

function listText(l: ListResult): string {
  const lines: string[] = [];
  for (const a of l.applications) {
    lines.push(`${a.name}${a.environment ? ` (environment ${a.environment})` : ''}`);
    for (const s of a.servers) lines.push(`  server ${s.name}: ${s.engine} ${s.host}:${s.port}`);
    for (const name of a.pairs) {
      const p = l.pairs.find((x) => x.name === name)!;
      lines.push(`  pair ${p.name}: ${p.master} -> ${p.slave} (${p.engine}, ${p.desired})`);
    }
  }
  lines.push(`${l.applications.length} application(s), ${l.pairs.length} pair(s); dbrepl list --json gives a job matrix (one job per application, --only its pairs)`);
  return lines.join('\n') + '\n';
}
