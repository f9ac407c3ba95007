import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';

/** Test helpers that need nothing of dbrepl's code (the fault suite's script bundles them alone). */

/**
 * Every secret any test hands to the tool. Each run of the CLI (and of the bundled action)
 * checks its whole output against this list, so a leak fails the test that caused it.
 */
export const SECRETS = new Set<string>();

export function expectNoSecrets(text: string, where: string): void {
  for (const s of SECRETS) {
    if (s && text.includes(s)) throw new Error(`a secret leaked into ${where}: ${text.slice(Math.max(0, text.indexOf(s) - 80), text.indexOf(s) + 20).replace(s, '<SECRET>')}`);
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeYaml(dir: string, doc: unknown, name = 'replication.yml'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, stringify(doc));
  return file;
}

/**
 * Where dbrepl keeps a server's lock and journal on this host (hosts/run-state.ts): the same
 * key, worked out independently (engine, port, network namespace of this process).
 */
export function stateDirOf(engine: string, port: number): string {
  const netns = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/net'))![1];
  return `/var/lib/dbrepl/${engine}-${port}-${netns}`;
}
