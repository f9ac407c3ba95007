/**
 * libpq key/value connection strings (`host=a port=5432 user='x y'`), for reading a
 * slave's primary_conninfo and for writing the one pg_basebackup uses. Only the keys
 * given are kept; a caller that reads primary_conninfo drops `password` at once.
 */
export function parseConninfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const s = text;
  const skipSpace = (): void => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  while (i < s.length) {
    skipSpace();
    if (i >= s.length) break;
    let key = '';
    while (i < s.length && s[i] !== '=' && !/\s/.test(s[i]!)) key += s[i++];
    skipSpace();
    if (s[i] !== '=') break;
    i++;
    skipSpace();
    let value = '';
    if (s[i] === "'") {
      i++;
      while (i < s.length && s[i] !== "'") {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i++];
      }
      i++;
    } else {
      while (i < s.length && !/\s/.test(s[i]!)) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i++];
      }
    }
    out[key] = value;
  }
  return out;
}

export function formatConninfo(values: Record<string, string | number>): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}='${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');
}
