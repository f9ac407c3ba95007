/**
 * POSIX shell quoting for command lines that must pass through a shell (the SSH
 * transport: sshd hands the command to the user's login shell). Every argument becomes one
 * single-quoted word, so nothing in it is expanded; a single quote is closed, escaped
 * and reopened. Never used for secrets: those go through stdin.
 */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('an argument cannot contain a NUL byte');
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** A command line for messages: quoted, and cut to a readable length. */
export function commandSummary(argv: readonly string[], max = 160): string {
  const line = shellLine(argv.map((a) => (a.includes('\n') ? `${a.split('\n')[0]}…` : a)));
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
