// One runner per host (and one `npm start` per data folder): a lock file holding the holder's pid and
// start time. A lock left by a holder that died (SIGKILL, power loss) is taken over, since its pid no
// longer names that process.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { isSameProcess, processInfo, type ProcessIdentity } from './proc.ts';

/** Another live process holds the lock: a refusal in the current state, not a failure. */
export class LockHeldError extends Error {
  override name = 'LockHeldError';
}

export interface Lock {
  file: string;
  release(): void;
}

/** Who holds a lock, for the refusal: "another runner (pid 42) is running with this state folder". */
export interface LockHolder {
  what: string;
  where: string;
  hint: string;
}

const RUNNER: LockHolder = { what: 'runner', where: 'this state folder', hint: 'stop it first: one runner per host' };

/** Takes the lock or throws an error naming the process that holds it. */
export function acquireLock(file: string, holderName: LockHolder = RUNNER): Lock {
  const me: ProcessIdentity = { pid: process.pid, startTicks: processInfo(process.pid)?.startTicks ?? 0 };
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let holder: ProcessIdentity | undefined;
      try {
        holder = JSON.parse(readFileSync(file, 'utf8')) as ProcessIdentity;
      } catch {
        holder = undefined; // half-written by a runner that died while taking it
      }
      if (holder && isSameProcess(holder)) {
        throw new LockHeldError(
          `another ${holderName.what} (pid ${holder.pid}) is running with ${holderName.where} (lock ${file}); ${holderName.hint}`,
        );
      }
      try {
        unlinkSync(file);
      } catch (removeError) {
        if ((removeError as NodeJS.ErrnoException).code !== 'ENOENT') throw removeError;
      }
      continue;
    }
    writeSync(fd, JSON.stringify(me));
    closeSync(fd);
    return {
      file,
      release() {
        try {
          const holder = JSON.parse(readFileSync(file, 'utf8')) as ProcessIdentity;
          if (holder.pid === me.pid && holder.startTicks === me.startTicks) unlinkSync(file);
        } catch {
          // already gone
        }
      },
    };
  }
  throw new LockHeldError(`could not take the lock ${file}: another ${holderName.what} took it at the same moment; ${holderName.hint}`);
}
