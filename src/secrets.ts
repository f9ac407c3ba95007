/**
 * The set of values that must never be shown: every `${VAR}` substitution from the file,
 * plus any password the tool derives. Redaction is applied to everything the tool prints,
 * writes to a summary or output, or puts in an error message.
 */
export class SecretRegistry {
  private readonly values = new Set<string>();
  private readonly listeners: Array<(v: string) => void> = [];

  add(value: string | undefined | null): void {
    if (value === undefined || value === null) return;
    const v = String(value);
    if (v.trim() === '' || this.values.has(v)) return;
    this.values.add(v);
    for (const l of this.listeners) l(v);
  }

  /** Called for each secret already known and every one added later (e.g. core.setSecret). */
  onAdd(listener: (v: string) => void): void {
    this.listeners.push(listener);
    for (const v of this.values) listener(v);
  }

  redact(text: string): string {
    let out = text;
    // Longest first, so a secret that contains another is replaced whole.
    const sorted = [...this.values].sort((a, b) => b.length - a.length);
    for (const v of sorted) out = out.split(v).join('***');
    return out;
  }

  /**
   * Redacts every string inside a value, then serialises it: redacting the serialised
   * text instead could cut through numbers (a port used as a secret) and would miss a
   * secret that JSON escapes.
   */
  json(value: unknown, indent?: number): string {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' ? this.redact(v) : v), indent);
  }
}
