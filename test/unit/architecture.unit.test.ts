/**
 * The layering of STYLE.md, read from the source itself: no import cycles between files;
 * engines do not import the planner or the runner; config does not import the topology;
 * only engines/ talks to database drivers; only the entry points touch @actions/core.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

const SRC = path.join(__dirname, '../../src');

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** file (relative to src) -> imported modules: relative ones resolved to files, packages by name. */
const graph = new Map<string, string[]>();
for (const file of files(SRC)) {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  const deps = info.importedFiles.map((i) => {
    if (!i.fileName.startsWith('.')) return i.fileName;
    const base = path.resolve(path.dirname(file), i.fileName);
    const hit = [`${base}.ts`, path.join(base, 'index.ts'), ...(base.endsWith('.json') ? [base] : [])].find((f) => fs.existsSync(f));
    if (!hit) throw new Error(`${file}: cannot resolve ${i.fileName}`);
    return path.relative(SRC, hit);
  });
  graph.set(path.relative(SRC, file), deps);
}

test('no import cycles between source files', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, trail: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(f)), f].join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  expect(cycles).toEqual([]);
});

/** The layer of a file: its folder under src/; an engine's declarations (names, capabilities) are a layer of their own. */
const layer = (f: string): string => (/^engines\/((\w+\/)?capabilities|names)\.ts$/.test(f) ? 'engine declarations' : f.includes('/') ? f.split('/')[0]! : f);

test('no import cycles between layers (folders), reading type imports too', () => {
  const edges = new Map<string, Set<string>>();
  for (const [f, deps] of graph) {
    for (const d of deps) if (graph.has(d) && layer(d) !== layer(f)) (edges.get(layer(f)) ?? edges.set(layer(f), new Set()).get(layer(f))!).add(layer(d));
  }
  const reaches = (from: string, goal: string, seen = new Set<string>()): boolean =>
    [...(edges.get(from) ?? [])].some((n) => n === goal || (!seen.has(n) && (seen.add(n), reaches(n, goal, seen))));
  const cycles: string[] = [];
  for (const [from, tos] of edges) for (const to of tos) if (reaches(to, from)) cycles.push(`${from} -> ${to} -> ... -> ${from}`);
  expect(cycles).toEqual([]);
});

const importers = (pred: (dep: string) => boolean): string[] => [...graph].filter(([, deps]) => deps.some(pred)).map(([f]) => f).sort();

test('engines do not import the planner, the runner or the entry points; config does not import the topology', () => {
  expect(importers((d) => /^(plan|apply|report|env)\/|^(core|main|cli)\.ts$/.test(d)).filter((f) => f.startsWith('engines/') || f.startsWith('hosts/'))).toEqual([]);
  expect(importers((d) => d === 'topology.ts').filter((f) => f.startsWith('config/'))).toEqual([]);
  // hosts/ reads the engines' declared capabilities only, never their implementations.
  expect([...graph].filter(([f]) => f.startsWith('hosts/')).flatMap(([, deps]) => deps.filter((d) => d.startsWith('engines/')))).toEqual(['engines/capabilities.ts']);
});

test('only engines/ talks to database drivers; only the entry points touch @actions/core', () => {
  expect(importers((d) => ['pg', 'mysql2/promise', 'mysql2', 'ioredis', 'mongodb'].includes(d)).every((f) => f.startsWith('engines/'))).toBe(true);
  expect(importers((d) => d === '@actions/core')).toEqual(['index.ts']);
});
