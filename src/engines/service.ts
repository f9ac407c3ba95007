/** A service command line from the file (stop/start), run by /bin/sh on the server's host. */
export function serviceArgv(line: string): string[] {
  return ['/bin/sh', '-c', line];
}
