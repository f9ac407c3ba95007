import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import saslprep from '@mongodb-js/saslprep';

/**
 * A SCRAM-SHA-256 verifier computed on the runner, as psql's \password does, so the
 * replication password itself never travels in a statement (where log_statement could
 * record it) — the server only ever sees the verifier.
 */
export function scramVerifier(password: string, iterations = 4096, salt: Buffer = randomBytes(16)): string {
  const salted = pbkdf2Sync(prepare(password), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * SASLprep as the server applies it to the password it checks (RFC 4013): mapped,
 * normalised; a password with prohibited characters is used as it is, as PostgreSQL does.
 */
function prepare(password: string): string {
  try {
    return saslprep(password);
  } catch {
    return password;
  }
}
