import * as path from 'node:path';
import { run as runCore, Command, RunResult } from './core';
import { parseDuration } from './config/schema';
import { Inputs, Outputs } from './constants';
import { ConfigError, DbreplError, UsageError, messageOf } from './errors';
import type { Mode } from './plan/diff';
import { asDesired } from './plan/types';
import { githubClient, repoOf } from './env/github-client';
import { writeEnvironments } from './env/github-sink';
import { planMarker, pullRequestOf, upsertPlanComment } from './env/pr-comment';
import { envChanges, planMarkdown } from './report/render';
import { SecretRegistry } from './secrets';

/** The slice of @actions/core the action uses; tests hand in another implementation. */
export interface ActionRuntime {
  getInput(name: string): string;
  setOutput(name: string, value: string): void;
  setSecret(value: string): void;
  setFailed(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  notice(message: string): void;
  error(message: string, annotation?: { file: string; startLine: number; startColumn: number; title?: string }): void;
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  writeSummary(markdown: string): Promise<void>;
  env: NodeJS.ProcessEnv;
  /** Fires when the workflow run is cancelled (SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

export interface ActionInputs {
  command: Command;
  config: string;
  only: string[];
  resync: 'broken' | string[];
  secretsToken: string;
  envTarget: 'secrets' | 'variables';
  githubToken: string;
  comment: boolean;
  maxParallel: number;
  failOnDrift: boolean;
  lockTimeoutMs: number;
}

const COMMANDS: readonly Command[] = ['plan', 'apply', 'status', 'resync'];

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

function bool(name: string, value: string, fallback: boolean): boolean {
  if (value === '') return fallback;
  if (/^(true|yes|1)$/i.test(value)) return true;
  if (/^(false|no|0)$/i.test(value)) return false;
  throw new UsageError(`input ${name} takes true or false, not "${value}"`);
}

function duration(name: string, value: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new UsageError(`input ${name} takes a duration such as 30s or 5m, not "${value}"`);
  }
}

/** Every input read once, here, into a typed object. */
export function readInputs(rt: Pick<ActionRuntime, 'getInput'>): ActionInputs {
  const command = (rt.getInput(Inputs.Command) || 'plan') as Command;
  if (!COMMANDS.includes(command)) throw new UsageError(`input command takes ${COMMANDS.join(', ')}, not "${command}"`);
  const envTarget = rt.getInput(Inputs.EnvTarget) || 'secrets';
  if (envTarget !== 'secrets' && envTarget !== 'variables') throw new UsageError(`input env-target takes secrets or variables, not "${envTarget}"`);
  const maxParallel = Number(rt.getInput(Inputs.MaxParallel) || '4');
  if (!Number.isInteger(maxParallel) || maxParallel < 1) throw new UsageError('input max-parallel takes a whole number >= 1');
  const resync = rt.getInput(Inputs.Resync) || 'broken';
  return {
    command,
    config: rt.getInput(Inputs.Config) || 'replication.yml',
    only: list(rt.getInput(Inputs.Only)),
    resync: resync === 'broken' ? 'broken' : list(resync),
    secretsToken: rt.getInput(Inputs.SecretsToken),
    envTarget,
    githubToken: rt.getInput(Inputs.GithubToken),
    comment: bool(Inputs.Comment, rt.getInput(Inputs.Comment), true),
    maxParallel,
    failOnDrift: bool(Inputs.FailOnDrift, rt.getInput(Inputs.FailOnDrift), false),
    lockTimeoutMs: duration(Inputs.LockTimeout, rt.getInput(Inputs.LockTimeout) || '0') * 1000,
  };
}

/** inputs -> config -> inspect -> plan -> apply? -> env -> report. The one try/catch of the action. */
export async function run(rt: ActionRuntime): Promise<void> {
  const secrets = new SecretRegistry();
  secrets.onAdd((v) => rt.setSecret(v));
  try {
    const inputs = readInputs(rt);
    if (inputs.secretsToken) rt.setSecret(inputs.secretsToken);
    if (inputs.githubToken) rt.setSecret(inputs.githubToken);
    const workspace = rt.env.GITHUB_WORKSPACE ?? process.cwd();
    const configPath = path.resolve(workspace, inputs.config);
    const mode: Mode =
      inputs.command !== 'resync'
        ? { kind: 'converge' }
        : inputs.resync === 'broken'
          ? { kind: 'resync-broken' }
          : { kind: 'resync', pairs: new Set(inputs.resync) };
    const log = { info: (m: string) => rt.info(secrets.redact(m)), warn: (m: string) => rt.warning(secrets.redact(m)) };

    const result = await rt.group(`dbrepl ${inputs.command}`, () =>
      runCore(inputs.command, { configPath, only: inputs.only, maxParallel: inputs.maxParallel, env: rt.env, secrets, log, lockTimeoutMs: inputs.lockTimeoutMs, signal: rt.signal }, mode),
    );

    rt.setOutput(Outputs.Plan, secrets.json(result.plan));
    rt.setOutput(Outputs.Changes, String(result.plan.changes));
    rt.setOutput(Outputs.Status, secrets.json(result.status));
    // The variables are delivered as they are; values that are secrets are masked in logs by setSecret.
    rt.setOutput(Outputs.Env, JSON.stringify(result.env));

    const applied = inputs.command === 'apply' || inputs.command === 'resync';
    await publish(rt, inputs, result, applied, secrets);

    if (result.exitCode !== 0) {
      const failed = [...result.plan.pairs, ...result.plan.drift].filter((p) => p.result === 'failed' || (!applied && p.error));
      rt.setFailed(secrets.redact(`dbrepl ${inputs.command} failed: ${failed.map((p) => `${p.name}: ${p.error}`).join('; ') || 'see the log'}`));
      return;
    }
    if (inputs.failOnDrift && !applied) {
      const unhealthy = result.status.pairs.filter((p) => !asDesired(p));
      if (result.plan.changes > 0 || unhealthy.length > 0) {
        rt.setFailed(`fail-on-drift: ${result.plan.changes} change(s) planned, ${unhealthy.length} pair(s) not healthy`);
      }
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const i of err.issues) {
        rt.error(secrets.redact(`${i.key}: ${i.message}`), { file: i.file, startLine: i.line, startColumn: i.column, title: 'replication.yml' });
      }
      rt.setFailed(secrets.redact(`replication.yml is invalid:\n${err.message}`));
    } else if (err instanceof DbreplError) {
      rt.setFailed(secrets.redact(err.message));
    } else {
      rt.setFailed(secrets.redact(`unexpected error: ${messageOf(err)}`));
    }
  }
}

/**
 * What goes to GitHub: the job summary and, on a pull request, the same markdown as one
 * comment kept up to date; after an apply, each application's variables into its
 * environment (only those whose values changed). Values bound for secrets are masked in
 * the log first.
 */
async function publish(rt: ActionRuntime, inputs: ActionInputs, result: RunResult, applied: boolean, secrets: SecretRegistry): Promise<void> {
  if (inputs.secretsToken && inputs.envTarget === 'secrets') {
    for (const vars of Object.values(result.env)) for (const v of Object.values(vars)) if (v) rt.setSecret(v);
  }
  const marker = planMarker(inputs.config);
  const markdown = secrets.redact(
    planMarkdown(result.plan, {
      title: `dbrepl ${inputs.command}${applied ? ' (applied)' : ''}`,
      marker,
      env: { changes: envChanges(result.envBefore, result.env, result.environments), target: inputs.envTarget },
    }),
  );
  await rt.writeSummary(markdown);
  const baseUrl = rt.env.GITHUB_API_URL ?? 'https://api.github.com';
  const log = (m: string): void => rt.info(secrets.redact(m));

  const pr = pullRequestOf(rt.env);
  if (pr && inputs.comment && inputs.githubToken && !applied) {
    const outcome = await upsertPlanComment(githubClient(inputs.githubToken, baseUrl, log), repoOf(rt.env), pr.number, markdown, marker);
    if (outcome.kind === 'refused') {
      rt.notice(secrets.redact(`the plan is in the job summary; it could not be posted on pull request #${pr.number}${pr.fromFork ? ' (from a fork, whose token may not comment)' : ''}: ${outcome.why}`));
    } else {
      log(`plan comment ${outcome.kind} on pull request #${pr.number}`);
    }
  }

  // An application with a pair that could not be inspected after the run has variables nobody verified: not written.
  const unverified = new Set(result.status.pairs.filter((p) => p.state === 'unreachable').flatMap((p) => [p.master, p.slave].map((ref) => ref.split('/')[0]!)));
  const environments = Object.entries(result.environments).filter((e): e is [string, string] => !!e[1] && !unverified.has(e[0]));
  if (applied && unverified.size > 0) {
    const held = Object.entries(result.environments).filter(([app, env]) => env && unverified.has(app)).map(([app]) => app);
    if (held.length > 0) rt.warning(`the variables of ${held.join(', ')} were not written: a pair of theirs could not be inspected after the run, so their values are not verified`);
  }
  if (!applied || environments.length === 0) return;
  if (!inputs.secretsToken) {
    rt.notice(`the variables of ${environments.map(([a]) => a).join(', ')} were not written to GitHub: set secrets-token to write them into their environments`);
    return;
  }
  const client = githubClient(inputs.secretsToken, baseUrl, log);
  const written = await writeEnvironments(
    client,
    repoOf(rt.env),
    environments.map(([app, environment]) => ({ app, environment, values: result.env[app] ?? {} })),
    inputs.envTarget,
    inputs.secretsToken,
    log,
  );
  rt.setOutput(Outputs.Written, JSON.stringify(written.map((w) => ({ application: w.app, environment: w.environment, written: w.written, emptied: w.blanked, unchanged: w.unchanged }))));
}
