import YAML from 'yaml';
import { DbreplError } from '../../errors';
import { readServerFile, writeFile } from '../../hosts/files';
import type { Host } from '../../hosts/host';
import type { Server } from '../../model';
import type { MongoFacts } from './inspect';

/**
 * mongod has no include directive: `options_file` is its YAML configuration file itself (the
 * one it was started with: `--config`). dbrepl owns one key there, `replication.replSetName`,
 * and edits only that key, keeping every other line and comment (a YAML document edit).
 */
export function optionsFile(server: Server, f: Pick<MongoFacts, 'configFile'>): string {
  const file = server.optionsFile ?? f.configFile;
  if (!file) throw new DbreplError('STEP', `${server.ref} was started without a configuration file (--config) and has no options_file: dbrepl keeps replication.replSetName in that file, so a restart keeps it`);
  return file;
}

/** The text with replication.replSetName set (or removed, with null). */
export function withReplSetName(text: string, name: string | null): string {
  const doc = YAML.parseDocument(text);
  if (doc.errors.length > 0) throw new DbreplError('STEP', `the mongod configuration is not valid YAML: ${doc.errors[0]!.message}`);
  if (name !== null) doc.setIn(['replication', 'replSetName'], name);
  else if (doc.hasIn(['replication', 'replSetName'])) {
    doc.deleteIn(['replication', 'replSetName']);
    const rest = doc.getIn(['replication']) as YAML.YAMLMap | undefined;
    if (rest && YAML.isMap(rest) && rest.items.length === 0) doc.deleteIn(['replication']);
  }
  return doc.toString();
}

/** replication.replSetName as the file says it (null: none). */
export function replSetNameIn(text: string): string | null {
  const v = (YAML.parse(text) as { replication?: { replSetName?: unknown } } | null)?.replication?.replSetName;
  return v === undefined || v === null ? null : String(v);
}

/** Reads the file as the server's user would (its directory's owner); throws when it cannot. */
export async function readOptions(host: Host, server: Server, f: MongoFacts): Promise<string> {
  const file = optionsFile(server, f);
  const text = await readServerFile(host, file);
  if (text === null) throw new DbreplError('STEP', `${file} on ${host.label} cannot be read (as the owner of its directory): options_file of ${server.ref} must be the configuration file its mongod reads`);
  return text;
}

/**
 * Sets (or removes) replication.replSetName in the file, keeping its owner and mode, then
 * reads it back as the server's user: what the next start will read. `before` is the text
 * read (and journalled by the caller) before this write. Returns it.
 */
export async function writeReplSetName(host: Host, server: Server, f: MongoFacts, name: string | null, before?: string): Promise<string> {
  const file = optionsFile(server, f);
  before ??= await readOptions(host, server, f);
  await writeFile(host, file, withReplSetName(before, name), { followSymlinks: server.followSymlinks });
  const after = await readServerFile(host, file);
  if (after === null || replSetNameIn(after) !== name) {
    throw new DbreplError('STEP', `after writing ${file}, ${server.ref}'s next start would not read replication.replSetName ${name ?? '(none)'}: check that the file is readable by its mongod user`);
  }
  return before;
}

/** Puts the file back as it was. */
export async function restoreOptionsText(host: Host, server: Server, f: MongoFacts, before: string): Promise<void> {
  const file = optionsFile(server, f);
  await writeFile(host, file, before, { followSymlinks: server.followSymlinks });
}
