import type { SshSettings, TlsMode } from './config/schema';
import type { EngineName } from './engines/names';

/** The resolved file: servers and pairs as every layer sees them (built by topology.ts). */

export interface Server {
  /** `application/server` */
  ref: string;
  app: string;
  name: string;
  engine: EngineName;
  host: string;
  port: number;
  user?: string;
  password?: string;
  ssh?: SshSettings;
  dataDir?: string;
  service?: { stop: string; start: string };
  replicaSet: string;
  optionsFile?: string;
  /** The tool may edit configuration files of this server that are symbolic links. */
  followSymlinks?: boolean;
  /** TLS for every connection to this server (the tool's and its slaves'); absent: none. */
  tls?: TlsSettings;
}

export interface TlsSettings {
  mode: TlsMode;
  /** PEM texts (from the file, usually `${VAR}`). */
  ca?: string;
  cert?: string;
  key?: string;
}

export interface ReplicationLogin {
  user?: string;
  password?: string;
}

export interface Pair {
  name: string;
  /** Index in `replications`, for messages that point back at the file. */
  index: number;
  engine: EngineName;
  master: Server;
  slave: Server;
  desired: 'enabled' | 'disabled';
  resync: 'auto' | 'manual';
  maxLagSeconds: number;
  /**
   * How long a slave that follows the master but whose link is down for a connection reason
   * (the master restarting or unreachable, the network) counts as `reconnecting`; after it, broken.
   */
  resyncAfterSeconds: number;
  catchupTimeoutSeconds: number;
  /** Bound on the copy of the master; undefined: derived from the data size. */
  copyTimeoutSeconds?: number;
  /** mysql: physical (mariabackup), logical (a dump), or auto (physical where it can, else logical). */
  copy?: 'auto' | 'physical' | 'logical';
  /** Disable fences the master first (read-only), then checks there is one writer. */
  fence?: boolean;
  replication: ReplicationLogin;
}

export interface Application {
  name: string;
  environment?: string;
  servers: Server[];
}

export interface Topology {
  applications: Application[];
  servers: Map<string, Server>;
  pairs: Pair[];
  prune: boolean;
}
