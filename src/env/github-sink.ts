import { createHmac } from 'node:crypto';
import sodium from 'libsodium-wrappers';
import { GitHubClient, githubError, Repo, statusOf } from './github-client';

/**
 * Writes each application's variables into its GitHub deployment environment, as
 * environment secrets (sealed boxes against the environment's public key) or as
 * environment variables. A digest variable (`DBREPL_ENV_DIGEST`: the names written and an
 * HMAC of the values, keyed by the token, so it says nothing about values to those who
 * can read variables) tells whether anything changed since the last write: unchanged
 * applications are not written at all. A name written before that the topology no longer
 * has is set to empty, not left stale. The digest is written last, so a write that fails
 * half-way is done again by the next run.
 */

export const DIGEST_VARIABLE = 'DBREPL_ENV_DIGEST';

export type Target = 'secrets' | 'variables';

export interface AppValues {
  app: string;
  environment: string;
  values: Record<string, string>;
}

export interface SinkResult {
  app: string;
  environment: string;
  /** Names written (empty when nothing changed). */
  written: string[];
  /** Names written before, gone from the topology, set to empty. */
  blanked: string[];
  unchanged: boolean;
  /** The environment did not exist and was created. */
  created: boolean;
}

interface Digest {
  v: 1;
  target: Target;
  names: string[];
  hmac: string;
}

function digestOf(values: Record<string, string>, target: Target, key: string): Digest {
  const names = Object.keys(values).sort();
  const canonical = JSON.stringify(names.map((n) => [n, values[n]]));
  return { v: 1, target, names, hmac: createHmac('sha256', key).update(canonical).digest('hex') };
}

const envPath = '/repos/{owner}/{repo}/environments/{environment_name}';

async function ensureEnvironment(client: GitHubClient, repo: Repo, environment: string): Promise<boolean> {
  try {
    await client.request(`GET ${envPath}`, { ...repo, environment_name: environment });
    return false;
  } catch (err) {
    if (statusOf(err) !== 404) throw githubError(err, `reading environment ${environment}`, 'Environments: read');
  }
  try {
    await client.request(`PUT ${envPath}`, { ...repo, environment_name: environment });
    return true;
  } catch (err) {
    throw githubError(err, `creating the missing environment ${environment} (create it in the repository's settings, or let the token do it)`, 'Administration: read and write');
  }
}

async function readDigest(client: GitHubClient, repo: Repo, environment: string): Promise<Digest | null> {
  try {
    const r = await client.request(`GET ${envPath}/variables/{name}`, { ...repo, environment_name: environment, name: DIGEST_VARIABLE });
    const parsed = JSON.parse(String((r.data as { value?: string }).value ?? '')) as Digest;
    return parsed && parsed.v === 1 && Array.isArray(parsed.names) ? parsed : null;
  } catch (err) {
    if (statusOf(err) === 404 || err instanceof SyntaxError) return null;
    throw githubError(err, `reading ${DIGEST_VARIABLE} of environment ${environment}`, 'Environments: read');
  }
}

async function setVariable(client: GitHubClient, repo: Repo, environment: string, name: string, value: string): Promise<void> {
  const where = { ...repo, environment_name: environment, name };
  try {
    try {
      await client.request(`GET ${envPath}/variables/{name}`, where);
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await client.request(`POST ${envPath}/variables`, { ...repo, environment_name: environment, name, value });
      return;
    }
    await client.request(`PATCH ${envPath}/variables/{name}`, { ...where, value });
  } catch (err) {
    throw githubError(err, `writing variable ${name} of environment ${environment}`, 'Environments: read and write (variables)');
  }
}

/** A sealed box of `value` for the holder of `publicKey` (base64), as GitHub's secrets API wants it. */
export async function sealFor(publicKey: string, value: string): Promise<string> {
  await sodium.ready;
  const key = sodium.from_base64(publicKey, sodium.base64_variants.ORIGINAL);
  return sodium.to_base64(sodium.crypto_box_seal(sodium.from_string(value), key), sodium.base64_variants.ORIGINAL);
}

export async function writeEnvironments(client: GitHubClient, repo: Repo, apps: AppValues[], target: Target, digestKey: string, log: (m: string) => void): Promise<SinkResult[]> {
  const results: SinkResult[] = [];
  for (const { app, environment, values } of apps) {
    const created = await ensureEnvironment(client, repo, environment);
    const before = await readDigest(client, repo, environment);
    const digest = digestOf(values, target, digestKey);
    const stale = (before?.target === target ? before.names : []).filter((n) => !(n in values));
    if (before && before.target === target && before.hmac === digest.hmac && stale.length === 0) {
      log(`${app}: the variables of environment ${environment} are unchanged; nothing written`);
      results.push({ app, environment, written: [], blanked: [], unchanged: true, created });
      continue;
    }
    const all: Array<[string, string]> = [...Object.entries(values), ...stale.map((n): [string, string] => [n, ''])];
    if (target === 'secrets') {
      let key: { key_id: string; key: string };
      try {
        key = (await client.request(`GET ${envPath}/secrets/public-key`, { ...repo, environment_name: environment })).data as { key_id: string; key: string };
      } catch (err) {
        throw githubError(err, `reading the secrets public key of environment ${environment}`, 'Environments: read and write (secrets)');
      }
      for (const [name, value] of all) {
        try {
          await client.request(`PUT ${envPath}/secrets/{secret_name}`, { ...repo, environment_name: environment, secret_name: name, encrypted_value: await sealFor(key.key, value), key_id: key.key_id });
        } catch (err) {
          throw githubError(err, `writing secret ${name} of environment ${environment}`, 'Environments: read and write (secrets)');
        }
      }
    } else {
      for (const [name, value] of all) await setVariable(client, repo, environment, name, value);
    }
    await setVariable(client, repo, environment, DIGEST_VARIABLE, JSON.stringify(digest));
    log(`${app}: wrote ${Object.keys(values).length} ${target} to environment ${environment}${stale.length ? `, emptied ${stale.join(', ')}` : ''}`);
    results.push({ app, environment, written: Object.keys(values), blanked: stale, unchanged: false, created });
  }
  return results;
}
