import type { Logger } from './engines/engine';
import type { SecretRegistry } from './secrets';

/** Progress and warnings on stderr (stdout is kept for the --json document), redacted. */
export function stderrLogger(secrets: SecretRegistry, write: (s: string) => void = (s) => process.stderr.write(s)): Logger {
  return {
    info: (m) => write(secrets.redact(m) + '\n'),
    warn: (m) => write(secrets.redact(`warning: ${m}`) + '\n'),
  };
}
