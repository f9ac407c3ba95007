import * as fs from 'node:fs';
import * as path from 'node:path';
import { Document, isMap, isPair, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import type { $ZodIssue } from 'zod/v4/core';
import { ConfigError, ConfigIssue } from '../errors';
import type { SecretRegistry } from '../secrets';
import { configSchema, RawConfig, validKeysAt } from './schema';

/** A problem found after parsing (by the topology rules), at a key path of the file. */
export interface PathIssue {
  path: Array<string | number>;
  message: string;
  /** Point at the mapping key itself rather than its value. */
  atKey?: boolean;
}

export interface ReadConfig {
  file: string;
  raw: RawConfig;
  /** `${VAR}`s that were not set (only when reading with `unset: 'warn'`). */
  unset: UnsetVariable[];
  /** Positions for problems found later, so they too point at file:line:column. */
  issuesAt(issues: PathIssue[]): ConfigIssue[];
}

/** A `${NAME}` with no value, where the file uses it. */
export interface UnsetVariable {
  name: string;
  /** Where it is used: file, line, column, dotted key. */
  at: ConfigIssue;
  path: Array<string | number>;
}

export interface ReadOptions {
  /**
   * `error` (default): an unset variable is an error. `warn`: for commands that read the file
   * alone (validate, env), it is reported and the text `${NAME}` kept in its place; keys that
   * must be numbers or durations get a neutral stand-in, and the caller decides whether it
   * needed the value.
   */
  unset?: 'error' | 'warn';
}

/** Keys whose values are numbers or durations: an unset variable there gets a stand-in that parses. */
const STAND_INS: Record<string, string> = { port: '1', max_lag: '0', resync_after: '0', catchup_timeout: '0', copy_timeout: '0' };

const VAR = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Reads replication.yml (or `text`) and checks it against the schema; every problem is
 * reported at once, each with file:line:column and key. Values substituted from `${VAR}`
 * are registered as secrets.
 */
export function readConfig(file: string, env: NodeJS.ProcessEnv, secrets: SecretRegistry, text?: string, options: ReadOptions = {}): ReadConfig {
  if (text === undefined) {
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
      throw new ConfigError([{ file: display(file), line: 1, column: 1, key: '(file)', message: `${reason}; pass the file with -c/config` }]);
    }
    file = display(file);
  }
  return parseConfig(text, file, env, secrets, options);
}

function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv, secrets: SecretRegistry, options: ReadOptions): ReadConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined, key: string, message: string): ConfigIssue => {
    const pos = lineCounter.linePos(offset ?? 0);
    return { file, line: pos.line, column: pos.col, key, message };
  };

  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      if (e.code === 'DUPLICATE_KEY') {
        const found = keyAt(doc, e.pos[0]);
        if (found) {
          const first = lineCounter.linePos(found.firstOffset).line;
          return at(e.pos[0], dotted(found.path), `duplicate key "${String(found.path[found.path.length - 1])}" (first on line ${first}); each key may appear once`);
        }
      }
      return at(e.pos[0], '(yaml)', yamlMessage(e.message));
    }));
  }

  const issues: ConfigIssue[] = [];
  const unset: UnsetVariable[] = [];
  const substituted = substitute(doc, env, secrets, (offset, path, name) => {
    if (options.unset === 'warn') {
      unset.push({ name, path, at: at(offset, dotted(path), `environment variable ${name} is not set (not needed to read the file; plan, apply and status will need it)`) });
      const stand = STAND_INS[String(path[path.length - 1])];
      return stand ?? `\${${name}}`;
    }
    issues.push(at(offset, dotted(path), `environment variable ${name} is not set; export it (or add it to the workflow's env) before running`));
    return null;
  });
  if (issues.length > 0) throw new ConfigError(issues);

  const parsed = configSchema.safeParse(doc.toJS({ maxAliasCount: 100 }) ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) issues.push(...zodIssue(issue, doc, at, substituted));
    throw new ConfigError(sortIssues(issues));
  }
  return {
    file,
    raw: parsed.data,
    unset,
    issuesAt: (found) => sortIssues(found.map((i) => at(offsetOf(doc, i.path, i.atKey), dotted(i.path), i.message))),
  };
}

/** The mapping key starting at `offset`, its path, and where the first key of that name is. */
function keyAt(doc: Document, offset: number): { path: Array<string | number>; firstOffset: number } | undefined {
  let found: { path: Array<string | number>; firstOffset: number } | undefined;
  visit(doc, {
    Pair(_k, pair, ancestry) {
      if (!isScalar(pair.key) || pair.key.range?.[0] !== offset) return undefined;
      const parent = ancestry[ancestry.length - 1];
      const name = String(pair.key.value);
      const first = isMap(parent) ? parent.items.find((it) => isScalar(it.key) && String(it.key.value) === name) : undefined;
      found = {
        path: [...pathOf(ancestry, undefined), name],
        firstOffset: (first && isScalar(first.key) ? first.key.range?.[0] : undefined) ?? offset,
      };
      return visit.BREAK;
    },
  });
  return found;
}

type At = (offset: number | undefined, key: string, message: string) => ConfigIssue;

function display(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}

function yamlMessage(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+.*$/, '');
}

/**
 * Replace `${NAME}` in every string scalar, keeping the node (and so its position). `$${`
 * is a literal `${`. Returns the nodes that received a value, whose text is never echoed.
 */
function substitute(doc: Document, env: NodeJS.ProcessEnv, secrets: SecretRegistry, unset: (offset: number | undefined, path: Array<string | number>, name: string) => string | null): Set<unknown> {
  const touched = new Set<unknown>();
  visit(doc, {
    Scalar(_key, node, ancestry) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const keyPath = pathOf(ancestry, node);
      node.value = node.value.replace(VAR, (whole: string, name: string | undefined) => {
        if (name === undefined) return '${';
        const value = env[name];
        if (value === undefined) return unset(node.range?.[0], keyPath, name) ?? whole;
        secrets.add(value);
        touched.add(node);
        return value;
      });
    },
  });
  return touched;
}

function pathOf(ancestry: readonly unknown[], node: unknown): Array<string | number> {
  const out: Array<string | number> = [];
  const chain = [...ancestry, node];
  for (let i = 0; i < chain.length; i++) {
    const n = chain[i];
    if (isPair(n) && isScalar(n.key)) out.push(String(n.key.value));
    else if (n && typeof n === 'object' && 'items' in n && !isMap(n)) {
      const items = (n as { items: unknown[] }).items;
      const idx = items.indexOf(chain[i + 1]);
      if (idx >= 0) out.push(idx);
    }
  }
  return out;
}

function dotted(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s ? `.${String(seg)}` : String(seg);
  return s || '(root)';
}

/** Offset of the value at `path`, or of the key itself, or of the nearest existing ancestor. */
function offsetOf(doc: Document, path: ReadonlyArray<PropertyKey>, atKey = false): number | undefined {
  const segs = path.map((p) => (typeof p === 'number' ? p : String(p)));
  for (let n = segs.length; n >= 0; n--) {
    const sub = segs.slice(0, n);
    if (atKey && n === segs.length && n > 0) {
      const parent = sub.length > 1 ? doc.getIn(sub.slice(0, -1), true) : doc.contents;
      if (isMap(parent)) {
        const pair = parent.items.find((it) => isScalar(it.key) && String(it.key.value) === String(sub[sub.length - 1]));
        if (pair && isScalar(pair.key)) return pair.key.range?.[0];
      }
    }
    const node = n === 0 ? doc.contents : doc.getIn(sub, true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return range[0];
  }
  return 0;
}

function keyOffset(doc: Document, mapPath: ReadonlyArray<PropertyKey>, key: string): number | undefined {
  const map = mapPath.length === 0 ? doc.contents : doc.getIn(mapPath.map((p) => (typeof p === 'number' ? p : String(p))), true);
  if (isMap(map)) {
    const pair = map.items.find((it) => isScalar(it.key) && String(it.key.value) === key);
    if (pair && isScalar(pair.key)) return pair.key.range?.[0];
  }
  return offsetOf(doc, mapPath);
}

function zodIssue(issue: $ZodIssue, doc: Document, at: At, substituted: Set<unknown>): ConfigIssue[] {
  const path = issue.path;
  const describeReceived = (d: Document, p: ReadonlyArray<PropertyKey>): string => received(d, p, substituted);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const valid = validKeysAt(path);
      return issue.keys.map((k) => {
        const near = closest(k, valid);
        const hint = near ? `did you mean "${near}"? ` : '';
        return at(keyOffset(doc, path, k), dotted([...path, k]), `unknown key "${k}"; ${hint}valid keys here: ${valid.join(', ')}`);
      });
    }
    case 'invalid_type': {
      const exists = doc.hasIn(path.map((p) => (typeof p === 'number' ? p : String(p))));
      const last = path[path.length - 1];
      if (!exists && path.length > 0) {
        return [at(offsetOf(doc, path.slice(0, -1)), dotted(path), `missing required key "${String(last)}" (expected ${issue.expected})`)];
      }
      return [at(offsetOf(doc, path), dotted(path), `expected ${issue.expected}${describeReceived(doc, path)}`)];
    }
    case 'invalid_value':
      if (!doc.hasIn(path.map((p) => (typeof p === 'number' ? p : String(p)))) && path.length > 0) {
        return [at(offsetOf(doc, path.slice(0, -1)), dotted(path), `missing required key "${String(path[path.length - 1])}"; expected one of: ${issue.values.map((v) => String(v)).join(', ')}`)];
      }
      return [at(offsetOf(doc, path), dotted(path), `invalid value${describeReceived(doc, path)}; expected one of: ${issue.values.map((v) => String(v)).join(', ')}`)];
    case 'invalid_union': {
      // Port and duration unions: the string branch's message is the useful one.
      const inner = issue.errors.flat().find((e) => e.code !== 'invalid_type');
      return [at(offsetOf(doc, path), dotted(path), inner ? inner.message : 'invalid value')];
    }
    default:
      return [at(offsetOf(doc, path), dotted(path), issue.message)];
  }
}

function received(doc: Document, path: ReadonlyArray<PropertyKey>, substituted: Set<unknown>): string {
  const node = doc.getIn(path.map((p) => (typeof p === 'number' ? p : String(p))), true);
  if (substituted.has(node)) return ' (a value from the environment, not shown)';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return ', got nothing (empty value)';
    return typeof v === 'string' ? `, got "${v.length > 40 ? v.slice(0, 40) + '…' : v}"` : `, got ${String(v)}`;
  }
  if (isMap(node)) return ', got a mapping';
  if (node && typeof node === 'object' && 'items' in node) return ', got a list';
  return '';
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.column - b.column);
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
