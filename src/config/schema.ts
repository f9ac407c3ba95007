import { z } from 'zod';
import { ENGINE_NAMES, EngineName } from '../engines/names';

export type { EngineName };

export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]*$/;

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** `5m`, `90s`, `1h`, `7d`, `250ms`, or a bare number of seconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = DURATION_PATTERN.exec(value.trim());
  if (!m) throw new Error(`not a duration: ${value}`);
  return Number(m[1]) * (UNIT_SECONDS[m[2] ?? 's'] ?? 1);
}

/**
 * Seconds as the file would write them: `2m`, `90s` -> `1m30s`, `1h`, `250ms`; whole
 * seconds below a minute as `12s`. The inverse of parseDuration for messages.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return `${seconds}s`;
  if (seconds > 0 && seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  let rest = Math.round(seconds);
  if (rest === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

// Values substituted from ${VAR} are strings, so numeric keys also take digit strings.
const port = z
  .union([z.number().int(), z.string().regex(/^\d+$/, 'expected a port number (1-65535)')])
  .transform(Number)
  .pipe(z.number().int().min(1, 'expected a port number (1-65535)').max(65535, 'expected a port number (1-65535)'));

const duration = z
  .union([
    z.number().nonnegative('expected a duration such as 30s, 5m or 1h'),
    z.string().regex(DURATION_PATTERN, 'expected a duration such as 30s, 5m or 1h'),
  ])
  .transform(parseDuration);

const nonEmpty = z.string().min(1, 'must not be empty');

const bastion = z.strictObject({
  host: nonEmpty,
  port: port.optional(),
  user: nonEmpty.optional(),
});

export const sshSchema = z.strictObject({
  host: nonEmpty.optional(),
  port: port.optional(),
  user: nonEmpty.optional(),
  private_key: nonEmpty.optional(),
  passphrase: z.string().optional(),
  known_hosts: nonEmpty.optional(),
  host_key: nonEmpty.optional(),
  via: bastion.optional(),
  sudo: z.boolean().optional(),
});

export const TLS_MODES = ['disable', 'require', 'verify-full'] as const;

/** TLS for every connection made to a server: the tool's own and its slaves' replication channel. */
export const tlsSchema = z.strictObject({
  mode: z.enum(TLS_MODES).optional(),
  /** PEM: the CA that signed the server's certificate (verify-full); default: the system's CAs. */
  ca: nonEmpty.optional(),
  /** PEM: a client certificate and its key, for a server that asks for one. */
  cert: nonEmpty.optional(),
  key: nonEmpty.optional(),
});

export const replicationLoginSchema = z.strictObject({
  user: nonEmpty.optional(),
  password: z.string().optional(),
});

const serviceSchema = z.strictObject({
  stop: nonEmpty,
  start: nonEmpty,
});

export const serverSchema = z.strictObject({
  engine: z.enum(ENGINE_NAMES),
  host: nonEmpty,
  port: port.optional(),
  user: nonEmpty.optional(),
  password: z.string().optional(),
  ssh: sshSchema.optional(),
  data_dir: nonEmpty.optional(),
  service: serviceSchema.optional(),
  replica_set: nonEmpty.optional(),
  /** mysql (MariaDB): an option file the server reads and dbrepl owns, for settings that must survive a restart. */
  options_file: nonEmpty.optional(),
  /** The tool may edit a configuration file of this server that is a symbolic link (it writes the link's target). */
  follow_symlinks: z.boolean().optional(),
  tls: tlsSchema.optional(),
});

const applicationSchema = z.strictObject({
  environment: nonEmpty.optional(),
  servers: z.record(z.string(), serverSchema),
});

export const pairSchema = z.strictObject({
  master: nonEmpty.optional(),
  slave: nonEmpty.optional(),
  primary: nonEmpty.optional(),
  replica: nonEmpty.optional(),
  name: nonEmpty.optional(),
  state: z.enum(['enabled', 'disabled']).default('enabled'),
  resync: z.enum(['auto', 'manual']).default('auto'),
  max_lag: duration.default(300),
  /** How long a slave whose link to the master is down for a connection reason stays `reconnecting` before it counts as broken. */
  resync_after: duration.default(120),
  catchup_timeout: duration.default(600),
  replication: replicationLoginSchema.optional(),
  /** Bound on the copy of the master (default: derived from the data size). */
  copy_timeout: duration.optional(),
  /** mysql only: how the master is copied onto the slave (auto: physical with mariabackup where it can, else a logical dump). */
  copy: z.enum(['auto', 'physical', 'logical']).default('auto'),
  /** Disable makes the master read-only before promoting the slave, and checks that one writer is left. */
  fence: z.boolean().default(false),
});

export const configSchema = z.strictObject({
  version: z.literal(1, 'expected version: 1'),
  defaults: z
    .strictObject({
      ssh: sshSchema.optional(),
      replication: replicationLoginSchema.optional(),
      tls: tlsSchema.optional(),
    })
    .optional(),
  applications: z.record(z.string(), applicationSchema),
  replications: z.array(pairSchema).default([]),
  prune: z.boolean().default(false),
});

export type RawConfig = z.output<typeof configSchema>;
export type RawServer = z.output<typeof serverSchema>;
export type RawPair = z.output<typeof pairSchema>;
export type SshSettings = z.output<typeof sshSchema>;
export type TlsMode = (typeof TLS_MODES)[number];

/**
 * The keys a mapping at `path` may hold, read from the schema itself so that an
 * "unknown key" message lists exactly what would be valid there.
 */
export function validKeysAt(path: ReadonlyArray<PropertyKey>): string[] {
  let schema: unknown = configSchema;
  for (const seg of path) {
    schema = unwrap(schema);
    const def = defOf(schema);
    if (!def) return [];
    if (def.type === 'object') schema = (def.shape as Record<string, unknown>)[String(seg)];
    else if (def.type === 'record') schema = def.valueType;
    else if (def.type === 'array') schema = def.element;
    else return [];
  }
  const def = defOf(unwrap(schema));
  return def?.type === 'object' ? Object.keys(def.shape as object) : [];
}

interface Def {
  type: string;
  [k: string]: unknown;
}
function defOf(schema: unknown): Def | undefined {
  return (schema as { _zod?: { def?: Def } } | undefined)?._zod?.def;
}
function unwrap(schema: unknown): unknown {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (!def) return s;
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable') s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else return s;
  }
}
