// Where the database has no pg_cron (PGlite, or a DATABASE_URL without it), the stack runs the same
// sweep pg_cron would, on a timer. Failures are reported once per kind and retried at the next tick.
import type { Sql } from 'postgres';

export const SWEEP_INTERVAL_MS = 15_000;

export function startSweepTimer(sql: Sql, log: (line: string) => void, intervalMs = SWEEP_INTERVAL_MS): { stop(): void } {
  let lastError = '';
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      await sql`select public.agent_status_sweep()`;
      lastError = '';
    } catch (error) {
      const message = (error as Error).message;
      if (message !== lastError) log(`the sweep failed (retrying every ${intervalMs / 1000} s): ${message}`);
      lastError = message;
    } finally {
      running = false;
    }
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}
