/** What every benchmark script ends with: its servers stopped, its scratch directory removed, a failure's exit code. */
import * as fs from 'node:fs';

export async function cleanUp(servers: Array<{ destroy(): Promise<void> }>, dir: string): Promise<void> {
  await Promise.all(servers.map((s) => s.destroy()));
  fs.rmSync(dir, { recursive: true, force: true });
}

export function runBench(main: () => Promise<void>): void {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
