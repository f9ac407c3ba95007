/** Action input and output names (action.yml), in one place. */
export const Inputs = {
  Command: 'command',
  Config: 'config',
  Only: 'only',
  Resync: 'resync',
  SecretsToken: 'secrets-token',
  EnvTarget: 'env-target',
  GithubToken: 'github-token',
  Comment: 'comment',
  MaxParallel: 'max-parallel',
  FailOnDrift: 'fail-on-drift',
  LockTimeout: 'lock-timeout',
} as const;

export const Outputs = {
  Plan: 'plan',
  Changes: 'changes',
  Status: 'status',
  Env: 'env',
  /** After an apply: what was written to GitHub, per application (names only, never values). */
  Written: 'written',
} as const;
