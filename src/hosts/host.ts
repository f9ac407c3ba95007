import type { Server } from '../model';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The command hit its time limit and was stopped (with its children). */
  timedOut: boolean;
  /** The run was cancelled (its signal fired) and the command was stopped (with its children). */
  cancelled?: boolean;
}

/** A numeric user and group on a host. */
export interface RunAs {
  uid: number;
  gid: number;
}

export interface RunOptions {
  /**
   * Non-secret environment additions. The base environment of a host command is minimal
   * (PATH, HOME, LANG): nothing of the runner's environment (tokens, the file's values)
   * reaches it. Secrets go through stdin (see runScript), which survives sshd and sudo.
   */
  env?: Record<string, string>;
  input?: string | Buffer;
  /** Bound in milliseconds (default COMMAND_TIMEOUT_MS); on expiry the command and its children are stopped. */
  timeoutMs?: number;
  /** Run as this user: the owner of the files the command touches, never with more privilege than they need. */
  as?: RunAs;
  /** Called with each line of stderr as it arrives (progress of a long copy), besides collecting it. */
  progress?: (line: string) => void;
  /**
   * When it fires, the command is stopped with its children and the result says `cancelled`.
   * Default: the signal of the work in progress (util/cancel.ts); undo runs without one.
   */
  signal?: AbortSignal;
}

export interface HostFacts {
  /** The tool's own user on that host. */
  uid: number;
  /** `uname -n`. */
  hostname: string;
  /** One machine, whatever names or namespaces reach it: /proc/sys/kernel/random/boot_id. */
  bootId: string;
  /** Its network namespace (`net:[inode]`): one loopback is shared only within it. */
  netns: string;
}

/** Where host commands run: the runner itself, or (next) a server's host over SSH. */
export interface Host {
  readonly label: string;
  /** Runs argv without a shell; a non-zero exit (or a time-out) is returned, not thrown. */
  run(argv: string[], options?: RunOptions): Promise<CommandResult>;
  facts(): Promise<HostFacts>;
  close(): Promise<void>;
}

/** Where the tool's own database connections to a server go. */
export interface Endpoint {
  host: string;
  port: number;
}

/**
 * One provider per run, from the first inspection to the verification after apply: it
 * gives each server's host (for commands) and the endpoint the tool's own database
 * connections use (direct now; an SSH tunnel next), and closes everything at the end.
 */
export interface HostProvider {
  forServer(server: Server): Promise<Host>;
  endpoint(server: Server): Promise<Endpoint>;
  closeAll(): Promise<void>;
}


/**
 * Runs "$@" as a child and stops it when dbrepl is gone: a killed dbrepl (a cancelled or
 * lost runner) must not leave a copy writing into a data directory that the next run is
 * rolling back. A watchdog notices that the script's parent (dbrepl itself, or the sshd
 * session of its connection) has changed, i.e. died, and stops the command; `stop` is how
 * (the local process group, or the remote `timeout` that leads the command's group).
 * Signals the script receives (a cancellation) are passed to the command; its exit status
 * is the command's. Stdin is handed to the command through fd 3 (an asynchronous command's
 * stdin is /dev/null before any redirection of its own).
 */
export function orphanWatch(stop: string, announce = ''): string {
  // The shell exports a PWD of its own: not part of the command's environment.
  return `${announce}unset PWD; p=$PPID
exec 3<&0
"$@" <&3 3<&- & c=$!
exec 3<&-
trap 'kill -TERM $c 2>/dev/null' TERM INT HUP
( while kill -0 $c 2>/dev/null; do sleep 1; [ "$(cut -d' ' -f4 /proc/$$/stat 2>/dev/null)" = "$p" ] || { ${stop}; exit 0; }; done ) >/dev/null 2>&1 </dev/null &
while :; do wait $c; r=$?; kill -0 $c 2>/dev/null || exit $r; done`;
}
