import * as fs from 'node:fs';
import * as path from 'node:path';
import { SecretRegistry } from '../../src/secrets';
import { dbrepl, SECRETS, tempDir } from '../support/dbrepl';

test('JSON is redacted value by value: numbers stay numbers, escaped secrets are still caught', () => {
  const s = new SecretRegistry();
  s.add('5432');
  s.add('pa"ss\\word');
  const text = s.json({ lag_bytes: 154320, port: 5432, host: 'db:5432', step: 'sudo -S pa"ss\\word' });
  const back = JSON.parse(text);
  expect(back).toEqual({ lag_bytes: 154320, port: 5432, host: 'db:***', step: 'sudo -S ***' });
  expect(text).not.toContain('pa\\"ss');
});

test('a long substituted value in the wrong place is not echoed, not even in part', async () => {
  const dir = tempDir('dbrepl-secret-');
  const secret = 'Xk9fT2mQ7vLp4Rz8WcN1bYs6HdJ3eGa5uKo0iPqZZ';
  SECRETS.add(secret);
  const file = path.join(dir, 'replication.yml');
  fs.writeFileSync(file, 'version: 1\ndefaults:\n  replication: ${REPLICATION_PASSWORD}\napplications: {}\n');
  const r = await dbrepl(['validate', '-c', file], { REPLICATION_PASSWORD: secret });
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/replication\.yml:3:16: defaults\.replication: expected object \(a value from the environment, not shown\)/);
  expect(r.stderr).not.toContain(secret.slice(0, 8));
  fs.rmSync(dir, { recursive: true, force: true });
});
