import { DbreplError } from '../errors';
import type { Pair, Server } from '../model';
import type { Session, Step } from './engine';

/**
 * The last step of a fenced disable (PostgreSQL, MySQL/MariaDB): exactly one of the two takes
 * writes, the former slave (`promoted`: what happened to it) and not the master.
 */
export function oneWriterStep(pair: Pair, readOnly: (session: Session, server: Server) => Promise<boolean>, promoted: string, textNote = ''): Step {
  return {
    id: 'one-writer',
    side: 'slave',
    title: 'check that one writer is left',
    text: `slave and master: check that ${pair.slave.ref} takes writes and ${pair.master.ref} does not${textNote}`,
    run: async (session) => {
      if (!(await readOnly(session, pair.master))) throw new DbreplError('STEP', `${pair.master.ref} still takes writes after the fence: two writers`);
      if (await readOnly(session, pair.slave)) throw new DbreplError('STEP', `${pair.slave.ref} does not take writes after ${promoted}`);
    },
  };
}
