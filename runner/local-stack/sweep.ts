// Where the database has no pg_cron (PGlite, or a DATABASE_URL without it), the stack runs the same
// sweep pg_cron would, on a timer. Failures are reported once per kind and retried at the next tick.
// The timer has its own guarded connection (shared/guarded-pool.ts): a sweep that gets no answer
// in time replaces it, where a wedged connection would otherwise stop every later sweep.
import postgres from 'postgres';
import { GuardedPool, reconnectBackoff } from '../../shared/guarded-pool.ts';
import { clientOptions, type DatabaseChoice } from './database.ts';

export const SWEEP_INTERVAL_MS = 15_000;
const SWEEP_DEADLINE_MS = 30_000;

export function startSweepTimer(
  database: { url: string; kind: DatabaseChoice['kind'] },
  log: (line: string) => void,
  intervalMs = SWEEP_INTERVAL_MS,
): { stop(): Promise<void> } {
  const pool = new GuardedPool(
    () => postgres(database.url, { ...clientOptions(database.kind), max: 1, backoff: reconnectBackoff, fetch_types: false }),
    // a slow sweep is not a wedged connection: only one that has not answered for long
    { deadlineMs: Math.max(intervalMs, SWEEP_DEADLINE_MS) },
  );
  let lastError = '';
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      await pool.run('sweep', (sql) => sql`select public.agent_status_sweep()`);
      lastError = '';
    } catch (error) {
      const message = (error as Error).message;
      if (message !== lastError) log(`the sweep failed (retrying every ${intervalMs / 1000} s): ${message}`);
      lastError = message;
    } finally {
      running = false;
    }
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await pool.end();
    },
  };
}
