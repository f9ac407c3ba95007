/**
 * The docs cannot rot: every complete replication.yml in README.md and docs/ passes
 * `dbrepl validate` with no variable exported (as a newcomer would first run it), every
 * relative link resolves inside the repository, and nothing points outside it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dbrepl, tempDir } from '../support/dbrepl';

const ROOT = path.resolve(__dirname, '../..');

function markdownFiles(): string[] {
  const out = ['README.md'];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(path.join(ROOT, d), { withFileTypes: true })) {
      const rel = path.join(d, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.md')) out.push(rel);
    }
  };
  walk('docs');
  return out;
}

/** Fenced ```yaml blocks that are whole files (they have `version: 1` at the top level). */
function replicationFiles(): Array<[string, number, string]> {
  const out: Array<[string, number, string]> = [];
  for (const file of markdownFiles()) {
    const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!/^```ya?ml\s*$/.test(lines[i]!)) continue;
      const start = i + 1;
      let end = start;
      while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
      const body = lines.slice(start, end).join('\n');
      if (/^version: 1\b/m.test(body)) out.push([file, start + 1, body]);
      i = end;
    }
  }
  return out;
}

const blocks = replicationFiles();
let dir: string;
beforeAll(() => (dir = tempDir('dbrepl-docs-')));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the README and docs/ hold replication.yml examples for every engine', () => {
  expect(blocks.length).toBeGreaterThanOrEqual(4);
  const engines = new Set(blocks.flatMap(([, , body]) => [...body.matchAll(/engine: (\w+)/g)].map((m) => m[1])));
  expect([...engines].sort()).toEqual(['mongodb', 'mysql', 'postgresql', 'redis']);
  // The README's own example shows the three live engines.
  const readme = blocks.filter(([f]) => f === 'README.md').map(([, , b]) => b).join('\n');
  for (const e of ['postgresql', 'mysql', 'redis']) expect(readme).toContain(`engine: ${e}`);
});

test.each(blocks)('%s:%i validates with no variable exported', async (file, line, body) => {
  const yml = path.join(dir, `${file.replace(/\W/g, '_')}-${line}.yml`);
  fs.writeFileSync(yml, body + '\n');
  const r = await dbrepl(['validate', '--json', '-c', yml], { PATH: process.env.PATH });
  if (r.code !== 0) throw new Error(`${file}:${line}: dbrepl validate failed:\n${r.stderr}`);
  expect(r.json().valid).toBe(true);
});

test.each(markdownFiles())('%s: every relative link resolves in the repository, none points outside it', (file) => {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  expect(text).not.toMatch(/\.\.\/shared|SPEC\.md|LAB\.md|STYLE\.md/);
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1]!;
    if (/^(https?:|mailto:)/.test(target)) continue;
    const [rel, anchor] = target.split('#');
    const resolved = rel ? path.resolve(path.dirname(path.join(ROOT, file)), rel) : path.join(ROOT, file);
    expect(resolved.startsWith(ROOT + path.sep) || resolved === ROOT).toBe(true);
    if (!fs.existsSync(resolved)) throw new Error(`${file}: link ${target} does not resolve`);
    if (anchor && resolved.endsWith('.md')) {
      // GitHub's anchors: headings lower-cased, punctuation dropped, spaces to dashes.
      const slugs = [...fs.readFileSync(resolved, 'utf8').matchAll(/^#+ (.+)$/gm)].map((h) =>
        h[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-'),
      );
      if (!slugs.includes(anchor)) throw new Error(`${file}: link ${target}: no heading #${anchor} in ${path.relative(ROOT, resolved)}`);
    }
  }
});
