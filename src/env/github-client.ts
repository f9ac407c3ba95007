import { getOctokit } from '@actions/github';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { DbreplError } from '../errors';

/**
 * The GitHub API, as the action uses it. STYLE keeps every GitHub call in env/: the
 * variables' sinks and the plan's pull-request comment. Octokit from @actions/github, with
 * retries for server errors and rate limits honoured (primary and secondary, `retry-after`).
 */
export type GitHubClient = ReturnType<typeof getOctokit>;

export interface Repo {
  owner: string;
  repo: string;
}

const MAX_RATE_LIMIT_RETRIES = 3;

export function githubClient(token: string, baseUrl: string, log: (m: string) => void): GitHubClient {
  const client = getOctokit(
    token,
    {
      baseUrl,
      // 429 is ours (below): plugin-retry would back off without reading retry-after.
      retry: { doNotRetry: [400, 401, 403, 404, 422, 429, 451] },
      request: { retries: 3 },
      throttle: {
        onRateLimit: (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
          log(`GitHub rate limit on ${options.method} ${options.url}: retrying in ${retryAfter} s`);
          return retryCount < MAX_RATE_LIMIT_RETRIES;
        },
        onSecondaryRateLimit: (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
          log(`GitHub secondary rate limit on ${options.method} ${options.url}: retrying in ${retryAfter} s`);
          return retryCount < MAX_RATE_LIMIT_RETRIES;
        },
      },
    } as Parameters<typeof getOctokit>[1],
    retry,
    throttling,
  );
  // Too many requests: wait as long as GitHub says (retry-after), a few times.
  client.hook.wrap('request', async (request, options) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(options);
      } catch (err) {
        if (statusOf(err) !== 429 || attempt >= MAX_RATE_LIMIT_RETRIES) throw err;
        const after = Number((err as { response?: { headers?: Record<string, string> } }).response?.headers?.['retry-after']) || 2 ** attempt;
        log(`GitHub answered 429 to ${options.method} ${options.url}: retrying in ${after} s`);
        await new Promise((r) => setTimeout(r, after * 1000));
      }
    }
  });
  return client;
}

/** owner/repo from GITHUB_REPOSITORY. */
export function repoOf(env: NodeJS.ProcessEnv): Repo {
  const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/');
  if (!owner || !repo) throw new DbreplError('USAGE', 'GITHUB_REPOSITORY is not set (owner/repo): the action must run in a GitHub workflow to write to GitHub');
  return { owner, repo };
}

/** The HTTP status of an Octokit error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  const s = (err as { status?: unknown }).status;
  return typeof s === 'number' ? s : undefined;
}

/**
 * An error that says what to do: a 403/404 on a write names the permission the token lacks
 * (the workflow's GITHUB_TOKEN can never write secrets or variables).
 */
export function githubError(err: unknown, what: string, permission: string): DbreplError {
  const status = statusOf(err);
  const message = (err as Error).message ?? String(err);
  // GitHub names the permission an endpoint wants in this header; else the one we know.
  const accepted = (err as { response?: { headers?: Record<string, string> } }).response?.headers?.['x-accepted-github-permissions'];
  if (status === 403 || status === 404 || status === 401) {
    return new DbreplError(
      'STEP',
      `GitHub refused ${what} (${status}: ${message}): the token needs the repository permission "${permission}"${accepted ? ` (GitHub says: ${accepted})` : ''}. The workflow's GITHUB_TOKEN cannot have it: pass a fine-grained personal access token or a GitHub App installation token with that permission as secrets-token`,
      { cause: err },
    );
  }
  return new DbreplError('STEP', `GitHub: ${what} failed (${status ?? 'no status'}: ${message})`, { cause: err });
}
