/** PostgreSQL LSNs (`16/B374D848`) as byte positions. */
export function lsnToBigInt(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn.trim());
  if (!m) throw new Error(`not an LSN: ${lsn}`);
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

/** Bytes from `behind` to `ahead`, never negative (a slave can briefly report past the sampled master position). */
export function lsnDistance(ahead: string | null, behind: string | null): number | null {
  if (!ahead || !behind) return null;
  const d = lsnToBigInt(ahead) - lsnToBigInt(behind);
  return d > 0n ? Number(d) : 0;
}
