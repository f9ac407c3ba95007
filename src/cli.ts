#!/usr/bin/env node
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { run, Command } from './core';
import { desiredEnv, toDotenv } from './env/compute';
import { ConfigError, DbreplError, UsageError, messageOf } from './errors';
import { stderrLogger } from './log';
import type { Mode } from './plan/diff';
import { COLOR, PLAIN, planText, statusText } from './report/render';
import { SecretRegistry } from './secrets';
import { loadTopology } from './topology';

const USAGE = `usage:
  dbrepl plan     [-c FILE] [--only NAMES] [--json] [--detailed-exitcode]
  dbrepl apply    [-c FILE] [--only NAMES] [--json]
  dbrepl status   [-c FILE] [--only NAMES] [--json]
  dbrepl resync   [-c FILE] (--pair NAME... | --broken) [--json]
  dbrepl env      [-c FILE] [--format dotenv|json]
  dbrepl validate [-c FILE]
options: --max-parallel N (default 4)
exit codes: 0 success, 1 error, 2 plan has changes (plan --detailed-exitcode)
`;

export interface CliIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** stdout is a terminal that takes colour (and NO_COLOR is not set). */
  color?: boolean;
}

/** Runs one dbrepl command and returns its exit code; never calls process.exit. */
export async function cli(io: CliIo): Promise<number> {
  const secrets = new SecretRegistry();
  const out = (s: string): void => io.stdout(secrets.redact(s));
  const outJson = (v: unknown): void => io.stdout(secrets.json(v, 2) + '\n');
  const log = stderrLogger(secrets, io.stderr);
  try {
    const [command, ...rest] = io.argv;
    if (!command || command === '-h' || command === '--help' || command === 'help') {
      io.stdout(USAGE);
      return command ? 0 : 1;
    }
    const { values } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string', short: 'c', default: 'replication.yml' },
        only: { type: 'string' },
        json: { type: 'boolean', default: false },
        'detailed-exitcode': { type: 'boolean', default: false },
        pair: { type: 'string', multiple: true },
        broken: { type: 'boolean', default: false },
        format: { type: 'string', default: 'dotenv' },
        'max-parallel': { type: 'string', default: '4' },
      },
    });
    const configPath = path.resolve(io.cwd, values.config!);
    const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
    const maxParallel = Number(values['max-parallel']);
    if (!Number.isInteger(maxParallel) || maxParallel < 1) throw new UsageError('--max-parallel takes a whole number >= 1');

    switch (command) {
      case 'validate': {
        const { topology } = loadTopology(configPath, io.env, secrets);
        out(`${values.config} is valid: ${topology.applications.length} application(s), ${topology.servers.size} server(s), ${topology.pairs.length} pair(s)\n`);
        return 0;
      }
      case 'env': {
        const { topology } = loadTopology(configPath, io.env, secrets);
        const env = desiredEnv(topology);
        // The variables are the point of this command: printed as they are, not masked.
        if (values.format === 'json') io.stdout(JSON.stringify(env, null, 2) + '\n');
        else if (values.format === 'dotenv') io.stdout(toDotenv(env));
        else throw new UsageError(`--format takes dotenv or json, not "${values.format}"`);
        return 0;
      }
      case 'plan':
      case 'apply':
      case 'status':
      case 'resync': {
        let mode: Mode = { kind: 'converge' };
        if (command === 'resync') {
          if (values.broken && values.pair) throw new UsageError('resync takes --pair NAME... or --broken, not both');
          if (values.broken) mode = { kind: 'resync-broken' };
          else if (values.pair && values.pair.length > 0) mode = { kind: 'resync', pairs: new Set(values.pair.flatMap((p) => p.split(','))) };
          else throw new UsageError('resync needs --pair NAME... or --broken');
        }
        const result = await run(command as Command, { configPath, only, maxParallel, env: io.env, secrets, log }, mode);
        if (command === 'status') {
          if (values.json) outJson(result.status);
          else out(statusText(result.status));
          return result.exitCode;
        }
        const applied = command === 'apply' || command === 'resync';
        if (values.json) outJson(result.plan);
        else out(planText(result.plan, applied, io.color ? COLOR : PLAIN));
        if (result.exitCode !== 0) return result.exitCode;
        if (command === 'plan' && values['detailed-exitcode'] && result.plan.changes > 0) return 2;
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${command}"\n${USAGE}`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const i of err.issues) io.stderr(secrets.redact(`error: ${i.file}:${i.line}:${i.column}: ${i.key}: ${i.message}`) + '\n');
    } else if (err instanceof DbreplError) {
      io.stderr(secrets.redact(`error: ${err.message}`) + '\n');
    } else if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`error: ${messageOf(err)}\n${USAGE}`);
    } else {
      io.stderr(secrets.redact(`error: ${messageOf(err)}`) + '\n');
    }
    return 1;
  }
}

if (require.main === module) {
  void cli({
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
