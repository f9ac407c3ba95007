/** The engines SPEC section 1 names, and the shape of what each declares about itself: kept apart so any layer can import it. */
export const ENGINE_NAMES = ['postgresql', 'mysql', 'redis', 'mongodb'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/**
 * What the rest of the tool needs to know about an engine without loading its driver:
 * declared by each engine (engines/<name>/capabilities.ts) and read by topology (keys,
 * cascading, logins), env (prefix, port) and hosts (what to redact in program output).
 */
export interface EngineCapabilities {
  name: EngineName;
  /** How operators write it: PostgreSQL, MySQL, ... */
  label: string;
  defaultPort: number;
  /** `E` of SPEC section 5: E_ADDRESS, E_PORT, E_SLAVE_ADDRESSES. */
  envPrefix: string;
  /** A slave may itself be a master (SPEC section 2). */
  cascading: boolean;
  /** Pairs pull with a replication login of their own on the master. */
  needsReplicationLogin: boolean;
  /** Slaves must stay inside the master's application. */
  sameApplicationOnly: boolean;
  /** Server keys that only some engines use, and whether this one does. */
  serverKeys: ReadonlyArray<EngineServerKey>;
  /** Secrets that this engine's programs echo back in their output (hashes, statements). */
  redact: ReadonlyArray<{ pattern: RegExp; replacement: string }>;
}

export type EngineServerKey = 'data_dir' | 'options_file' | 'replica_set' | 'follow_symlinks';
export const ENGINE_SERVER_KEYS: readonly EngineServerKey[] = ['data_dir', 'options_file', 'replica_set', 'follow_symlinks'];

