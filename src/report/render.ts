import type { Plan, Status, StatusPair } from '../plan/types';
import { humanBytes } from '../util/bytes';

/**
 * One renderer for every human-facing view of a plan: the terminal (text) and the job
 * summary / PR comment (markdown). Inputs are already free of secrets; callers redact the
 * final string once more at the edge.
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

export function planText(plan: Plan, applied = false): string {
  const out: string[] = [];
  for (const p of plan.pairs) {
    const result = p.result ? ` [${p.result}]` : '';
    const no = refused(p);
    out.push(`${no ? '!' : (SYMBOL[p.action] ?? '?')} ${p.name}: ${p.master} -> ${p.slave} (${p.engine}) desired ${p.desired}, live ${p.live}: ${p.action}${no ? ' REFUSED' : ''}${result}`);
    out.push(`    ${p.reason}`);
    if (no) out.push(`    refused: ${p.error}`, '    nothing will be done for this pair; the steps it would take:');
    if (p.action !== 'none' && !applied) {
      for (const s of p.steps) out.push(`    - ${s}`);
      if (p.disruption) out.push(`    disruption: ${p.disruption}`);
      out.push(`    replication traffic: ${p.replication_tls === 'none' ? 'not encrypted' : `TLS (${p.replication_tls})`}`);
    }
    if (p.preserved && p.action !== 'none') out.push(`    previous slave data ${applied && p.result === 'done' ? 'kept' : 'will be kept'} at: ${p.preserved}`);
    for (const w of p.warnings) out.push(`    warning: ${w}`);
    if (p.error && p.live !== 'unreachable' && !no) out.push(`    error: ${p.error}`);
  }
  for (const d of plan.drift) {
    out.push(`${SYMBOL[d.action] ?? '?'} drift ${d.slave} <- ${d.master} (${d.engine}): ${d.action}${d.result ? ` [${d.result}]` : ''}`);
    out.push(`    ${d.reason}`);
    if (d.error) out.push(`    ${d.action !== 'none' && !d.result ? 'refused' : 'error'}: ${d.error}`);
  }
  if (plan.pairs.length === 0 && plan.drift.length === 0) out.push('No replication pairs selected.');
  out.push('');
  const refusals = [...plan.pairs, ...plan.drift].filter(refused).length;
  out.push(applied ? summaryLine(plan) : `Plan: ${plan.changes} change(s)${refusals > 0 ? `, ${refusals} refused (see "refused:" above; the run exits 1)` : ''}.`);
  return out.join('\n') + '\n';
}

function summaryLine(plan: Plan): string {
  const all = [...plan.pairs, ...plan.drift];
  const count = (r: string): number => all.filter((p) => p.result === r).length;
  return `Apply: ${count('done')} done, ${count('failed')} failed, ${count('skipped')} skipped.`;
}

export function statusText(status: Status): string {
  const lines = status.pairs.map((p: StatusPair) => {
    const err = p.error ? ` (${p.error})` : '';
    return `${p.name}: ${p.master} -> ${p.slave} (${p.engine}) ${p.state}, lag ${lag(p.lag_seconds, p.lag_bytes)}${err}`;
  });
  if (lines.length === 0) lines.push('No replication pairs selected.');
  return lines.join('\n') + '\n';
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Markdown for the job summary and the PR comment. */
export function planMarkdown(plan: Plan, title: string): string {
  const out: string[] = [`### ${title}`, ''];
  out.push('| pair | master -> slave | engine | desired | live | action | lag | result |');
  out.push('|---|---|---|---|---|---|---|---|');
  for (const p of plan.pairs) {
    out.push(`| ${cell(p.name)} | ${cell(`${p.master} -> ${p.slave}`)} | ${p.engine} | ${p.desired} | ${p.live} | **${p.action}** | ${lag(p.lag_seconds, p.lag_bytes)} | ${p.result ?? '-'} |`);
  }
  for (const d of plan.drift) {
    out.push(`| drift: ${cell(d.name)} | ${cell(`${d.master} -> ${d.slave}`)} | ${d.engine} | (undeclared) | ${d.live} | **${d.action}** | - | ${d.result ?? '-'} |`);
  }
  out.push('');
  const notes = plan.pairs.filter((p) => p.action !== 'none' || p.error || p.warnings.length > 0);
  for (const p of notes) {
    out.push(`<details><summary>${cell(p.name)}: ${p.action} — ${cell(p.reason)}</summary>`, '');
    for (const s of p.steps) out.push(`- ${cell(s)}`);
    if (p.disruption) out.push(`- disruption: ${cell(p.disruption)}`);
    if (p.preserved) out.push(`- previous slave data kept at \`${p.preserved}\``);
    for (const w of p.warnings) out.push(`- ⚠️ ${cell(w)}`);
    if (p.error) out.push(`- ❌ ${cell(p.error)}`);
    out.push('', '</details>', '');
  }
  out.push(`**${plan.changes} change(s).**`);
  return out.join('\n') + '\n';
}
