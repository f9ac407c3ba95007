import { asDesired, EnvMap, Plan, PlannedPair, PreservedCopy, Status, StatusPair } from '../plan/types';
import { humanBytes } from '../util/bytes';

/**
 * One renderer for every human-facing view of a plan: the terminal (text) and the job
 * summary / PR comment (markdown), from the same pieces. Inputs are already free of
 * secrets; callers redact the final string once more at the edge.
 */

function lag(seconds: number | null, bytes: number | null): string {
  if (seconds === null && bytes === null) return '-';
  const s = seconds === null ? '?' : `${seconds}s`;
  const b = bytes === null ? '?' : humanBytes(bytes);
  return `${s} / ${b}`;
}

const SYMBOL: Record<string, string> = { none: ' ', enable: '+', disable: '-', resync: '~' };

/** A pair the checks refused at plan time: its action will not run. */
const refused = (p: { action: string; error: string | null; live: string; result?: string }): boolean => p.action !== 'none' && p.error !== null && p.live !== 'unreachable' && !p.result;

/** "2 to enable, 1 to disable, 0 to resync" (and what was refused). */
export function summaryLine(plan: Plan): string {
  const rows = [...plan.pairs, ...plan.drift];
  const n = (a: string): number => rows.filter((p) => p.action === a && !refused(p)).length;
  const no = rows.filter(refused).length;
  return `${n('enable')} to enable, ${n('disable')} to disable, ${n('resync')} to resync${no > 0 ? `, ${no} refused (the run exits 1)` : ''}`;
}

/**
 * What happened to a pair, in words: `skipped` only for something that was not attempted
 * (its why is in `error`); a pair with nothing to do is "already as desired".
 */
export function resultWord(p: { action: string; result?: string }): string | null {
  if (!p.result) return null;
  return p.action === 'none' && p.result === 'skipped' ? 'already as desired' : p.result;
}

/** ANSI colours, used only when the output is a terminal. */
export interface Style {
  add(s: string): string;
  remove(s: string): string;
  change(s: string): string;
  bad(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

const wrap = (code: string) => (s: string): string => `\u001b[${code}m${s}\u001b[0m`;
export const COLOR: Style = { add: wrap('32'), remove: wrap('31'), change: wrap('33'), bad: wrap('1;31'), dim: wrap('2'), bold: wrap('1') };
export const PLAIN: Style = { add: (s) => s, remove: (s) => s, change: (s) => s, bad: (s) => s, dim: (s) => s, bold: (s) => s };

function symbolOf(p: PlannedPair | Plan['drift'][number], style: Style): string {
  if (refused(p)) return style.bad('!');
  const sym = SYMBOL[p.action] ?? '?';
  return p.action === 'enable' ? style.add(sym) : p.action === 'disable' ? style.remove(sym) : p.action === 'resync' ? style.change(sym) : sym;
}

/** The Terraform-like text plan: a symbol per pair, its reason, its steps, then one summary line. */
export function planText(plan: Plan, applied = false, style: Style = PLAIN): string {
  const out: string[] = [];
  for (const p of plan.pairs) {
    const word = resultWord(p);
    const result = word ? ` [${word === 'failed' ? style.bad(word) : word}]` : '';
    const no = refused(p);
    out.push(`${symbolOf(p, style)} ${style.bold(p.name)}: ${p.master} -> ${p.slave} (${p.engine}) desired ${p.desired}, live ${p.live}: ${p.action}${no ? style.bad(' REFUSED') : ''}${result}`);
    out.push(`    ${p.reason}`);
    if (no) out.push(`    ${style.bad('refused:')} ${p.error}`, '    nothing will be done for this pair; the steps it would take:');
    if (p.action !== 'none' && !applied) {
      for (const s of p.steps) out.push(style.dim(`    - ${s}`));
      if (p.disruption) out.push(`    disruption: ${p.disruption}`);
      out.push(`    replication traffic: ${p.replication_tls === 'none' ? 'not encrypted' : `TLS (${p.replication_tls})`}`);
    }
    if (p.preserved && p.action !== 'none') out.push(`    previous slave data ${applied && p.result === 'done' ? 'kept' : 'will be kept'} at: ${p.preserved}`);
    for (const w of p.warnings) out.push(`    ${style.change('warning:')} ${w}`);
    if (p.error && p.live !== 'unreachable' && !no) out.push(`    ${p.result === 'skipped' ? 'skipped:' : style.bad('error:')} ${p.error}`);
  }
  for (const d of plan.drift) {
    const word = resultWord(d);
    out.push(`${symbolOf(d, style)} drift ${d.slave} <- ${d.master} (${d.engine}): ${d.action}${word ? ` [${word}]` : ''}`);
    out.push(`    ${d.reason}`);
    if (d.error) out.push(`    ${d.action !== 'none' && !d.result ? 'refused' : 'error'}: ${d.error}`);
  }
  if (plan.pairs.length === 0 && plan.drift.length === 0) out.push('No replication pairs selected.');
  out.push('');
  out.push(applied ? applySummary(plan) : style.bold(`Plan: ${summaryLine(plan)}.`));
  return out.join('\n') + '\n';
}

function applySummary(plan: Plan): string {
  const words = [...plan.pairs, ...plan.drift].map(resultWord);
  const count = (r: string): number => words.filter((w) => w === r).length;
  return `Apply: ${count('done')} done, ${count('failed')} failed, ${count('skipped')} skipped, ${count('already as desired')} already as desired.`;
}

/** `3d 4h`, `5h 12m`, `42m`, `17s`: an age for people. */
export function humanAge(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m`;
  return `${seconds}s`;
}

/** Copies of previous data, grouped by server, oldest first; the newest of each marked. */
export function copiesText(copies: PreservedCopy[]): string[] {
  const out: string[] = [];
  let server = '';
  for (const c of copies) {
    if (c.server !== server) out.push(`${(server = c.server)}:`);
    out.push(`    ${c.path}  ${humanBytes(c.bytes)}, ${humanAge(c.age_seconds)} old${c.newest ? ' (newest: kept)' : ''}`);
  }
  return out;
}

export function statusText(status: Status): string {
  const lines = status.pairs.map((p: StatusPair) => {
    const err = p.error ? ` (${p.error})` : '';
    const off = asDesired(p) ? '' : ` [not as the file wants: ${p.desired === 'enabled' ? 'replicating' : 'not following this master'}]`;
    return `${p.name}: ${p.master} -> ${p.slave} (${p.engine}) ${p.state}, lag ${lag(p.lag_seconds, p.lag_bytes)}${err}${off}`;
  });
  if (lines.length === 0) lines.push('No replication pairs selected.');
  if (status.preserved && status.preserved.length > 0) lines.push('', 'Preserved copies of previous data (dbrepl preserved list|remove):', ...copiesText(status.preserved));
  return lines.join('\n') + '\n';
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** One variable's change, for people: secrets only say whether they change. */
export interface VariableChange {
  name: string;
  before: string | undefined;
  after: string | undefined;
}

/** Per application with a GitHub environment: the variables that change from `before` to `after`. */
export function envChanges(before: EnvMap, after: EnvMap, environments: Record<string, string | undefined>): Array<{ app: string; environment: string; changes: VariableChange[] }> {
  const out: Array<{ app: string; environment: string; changes: VariableChange[] }> = [];
  for (const [app, environment] of Object.entries(environments)) {
    if (!environment) continue;
    const b = before[app] ?? {};
    const a = after[app] ?? {};
    const names = [...new Set([...Object.keys(b), ...Object.keys(a)])].sort();
    out.push({ app, environment, changes: names.filter((n) => b[n] !== a[n]).map((name) => ({ name, before: b[name], after: a[name] })) });
  }
  return out;
}

export interface MarkdownOptions {
  title: string;
  /** Hidden marker that finds the PR comment again. */
  marker?: string;
  /** The variables' changes, and whether their values may be shown (variables) or not (secrets). */
  env?: { changes: ReturnType<typeof envChanges>; target: 'secrets' | 'variables' };
}

const value = (v: string | undefined): string => (v === undefined ? '(none)' : v === '' ? '(empty)' : `\`${cell(v)}\``);

/** Markdown for the job summary and the PR comment (the same text for both). */
export function planMarkdown(plan: Plan, options: MarkdownOptions | string): string {
  const o: MarkdownOptions = typeof options === 'string' ? { title: options } : options;
  const out: string[] = [];
  if (o.marker) out.push(o.marker);
  out.push(`### ${o.title}`, '', `**${summaryLine(plan)}.**`, '');
  out.push('| pair | master -> slave | engine | desired | live | action | lag | result |');
  out.push('|---|---|---|---|---|---|---|---|');
  for (const p of plan.pairs) {
    const action = refused(p) ? `**${p.action}** (refused)` : `**${p.action}**`;
    out.push(`| ${cell(p.name)} | ${cell(`${p.master} -> ${p.slave}`)} | ${p.engine} | ${p.desired} | ${p.live} | ${action} | ${lag(p.lag_seconds, p.lag_bytes)} | ${resultWord(p) ?? '-'} |`);
  }
  for (const d of plan.drift) {
    out.push(`| drift: ${cell(d.name)} | ${cell(`${d.master} -> ${d.slave}`)} | ${d.engine} | (undeclared) | ${d.live} | **${d.action}** | - | ${resultWord(d) ?? '-'} |`);
  }
  out.push('');
  const notes = plan.pairs.filter((p) => p.action !== 'none' || p.error || p.warnings.length > 0);
  for (const p of notes) {
    out.push(`<details${p.action !== 'none' ? ' open' : ''}><summary><b>${cell(p.name)}</b>: ${p.action}${refused(p) ? ' (refused)' : ''} — ${cell(p.reason)}</summary>`, '');
    if (refused(p)) out.push(`- ❌ **refused**: ${cell(p.error!)}`);
    for (const s of p.steps) out.push(`- ${cell(s)}`);
    if (p.disruption) out.push(`- **disruption**: ${cell(p.disruption)}`);
    if (p.action !== 'none') out.push(`- **replication traffic**: ${p.replication_tls === 'none' ? 'not encrypted' : `TLS (${p.replication_tls})`}`);
    if (p.preserved) out.push(`- **previous slave data** ${p.result === 'done' ? 'kept' : 'will be kept'} at \`${p.preserved}\``);
    for (const w of p.warnings) out.push(`- ⚠️ ${cell(w)}`);
    if (p.error && !refused(p)) out.push(`- ❌ ${cell(p.error)}`);
    out.push('', '</details>', '');
  }
  if (o.env) {
    out.push('#### Environment variables', '');
    if (o.env.changes.length === 0) out.push('No application names a GitHub environment.', '');
    for (const e of o.env.changes) {
      if (e.changes.length === 0) {
        out.push(`- \`${e.app}\` → environment \`${e.environment}\`: no change`);
        continue;
      }
      out.push(`- \`${e.app}\` → environment \`${e.environment}\` (${o.env.target}):`);
      for (const c of e.changes) {
        out.push(o.env.target === 'secrets' ? `  - \`${c.name}\`: changed` : `  - \`${c.name}\`: ${value(c.before)} → ${value(c.after)}`);
      }
    }
    out.push('');
  }
  return out.join('\n') + '\n';
}
