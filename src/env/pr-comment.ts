import * as fs from 'node:fs';
import { GitHubClient, githubError, Repo, statusOf } from './github-client';

/**
 * The plan as one comment on the pull request: found again by a hidden marker (on any
 * page of the comments) and updated in place, never posted twice.
 */

export function planMarker(config: string): string {
  return `<!-- dbrepl-plan: ${config.replace(/-->/g, '')} -->`;
}

export interface PullRequest {
  number: number;
  /** Opened from a fork: its token usually may not comment. */
  fromFork: boolean;
}

/** The pull request of a pull_request(_target) event, from the runner's event file. */
export function pullRequestOf(env: NodeJS.ProcessEnv): PullRequest | null {
  if (!['pull_request', 'pull_request_target'].includes(env.GITHUB_EVENT_NAME ?? '') || !env.GITHUB_EVENT_PATH) return null;
  try {
    const event = JSON.parse(fs.readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) as {
      pull_request?: { number?: number; head?: { repo?: { full_name?: string } }; base?: { repo?: { full_name?: string } } };
    };
    const pr = event.pull_request;
    if (!pr?.number) return null;
    return { number: pr.number, fromFork: !!pr.head?.repo?.full_name && pr.head.repo.full_name !== pr.base?.repo?.full_name };
  } catch {
    return null;
  }
}

export type CommentOutcome = { kind: 'created' | 'updated'; id: number } | { kind: 'refused'; why: string };

export async function upsertPlanComment(client: GitHubClient, repo: Repo, pr: number, body: string, marker: string): Promise<CommentOutcome> {
  let comments: Array<{ id: number; body?: string | null }>;
  try {
    comments = await client.paginate('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { ...repo, issue_number: pr, per_page: 100 });
  } catch (err) {
    if (statusOf(err) === 403 || statusOf(err) === 404) return { kind: 'refused', why: githubError(err, `reading the comments of pull request #${pr}`, 'Pull requests: read').message };
    throw githubError(err, `reading the comments of pull request #${pr}`, 'Pull requests: read');
  }
  const mine = comments.find((c) => c.body?.includes(marker));
  try {
    if (mine) {
      await client.request('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', { ...repo, comment_id: mine.id, body });
      return { kind: 'updated', id: mine.id };
    }
    const r = await client.request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { ...repo, issue_number: pr, body });
    return { kind: 'created', id: (r.data as { id: number }).id };
  } catch (err) {
    // A token that may not comment (a pull request from a fork): not a failure of the run.
    if (statusOf(err) === 403 || statusOf(err) === 404) return { kind: 'refused', why: githubError(err, `commenting on pull request #${pr}`, 'Pull requests: write').message };
    throw githubError(err, `commenting on pull request #${pr}`, 'Pull requests: write');
  }
}
