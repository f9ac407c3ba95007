/**
 * Typed errors. Every message tells the operator what to fix and never carries a secret:
 * messages are built from names and positions, and every path to an output also passes
 * through the secret registry (see secrets.ts) as a second line of defence.
 */
export type ErrorCode =
  | 'CONFIG'
  | 'CONNECTION'
  | 'STEP'
  | 'TIMEOUT'
  | 'USAGE'
  | 'LOCKED'
  | 'CANCELLED'
  | 'INTERNAL';

export class DbreplError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  /** Dotted key path of the offending value, e.g. `applications.shop.servers.pg.engine`. */
  key: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.key}: ${i.message}`;
}

export class ConfigError extends DbreplError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super('CONFIG', issues.map(formatIssue).join('\n'));
    this.issues = issues;
  }
}

export class UsageError extends DbreplError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** A server could not be reached or refused the tool's login. */
export class ConnectionError extends DbreplError {
  readonly server: string;
  constructor(server: string, message: string, options?: { cause?: unknown }) {
    super('CONNECTION', `${server}: ${message}`, options);
    this.server = server;
  }
}

/** One step of enable/disable/resync failed; `step` names it for the report. */
export class StepError extends DbreplError {
  readonly step: string;
  constructor(step: string, message: string, options?: { cause?: unknown }) {
    super('STEP', `step "${step}" failed: ${message}`, options);
    this.step = step;
  }
}

/** The run was cancelled (SIGINT/SIGTERM): what was running was stopped. */
export class CancelledError extends DbreplError {
  constructor(message: string) {
    super('CANCELLED', message);
  }
}

/** Another run holds a lock this one needs (after waiting --lock-timeout). */
export class LockedError extends DbreplError {
  constructor(message: string) {
    super('LOCKED', message);
  }
}

export class TimeoutError extends DbreplError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

/** Message of any thrown value, for reports; the caller redacts. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
