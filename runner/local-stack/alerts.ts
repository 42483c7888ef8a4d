// The local stack has no pg_net, so it calls the dispatch function itself, as pg_cron does on
// Supabase: on a timer, and at once when a flip queues a delivery (the outbox's pg_notify on
// agent_status_alerts; a hint only, the timer is the truth). Runs never overlap: a wake during a run
// makes one more run right after it.
import type { Database } from './database.ts';

export const ALERT_INTERVAL_MS = 5_000;

export async function startAlertTimer(options: {
  /** its listen(): on PGlite the stack reads notifications off the one backend's answers */
  database: Pick<Database, 'listen'>;
  /** the gateway's URL */
  url: string;
  /** the key the dispatch function accepts (public.alert_configure_dispatch) */
  dispatchKey: string;
  log: (line: string) => void;
  intervalMs?: number;
}): Promise<{ stop(): Promise<void> }> {
  const intervalMs = options.intervalMs ?? ALERT_INTERVAL_MS;
  const aborter = new AbortController();
  let running: Promise<void> | undefined;
  let again = false;
  let lastError = '';

  const runOnce = async () => {
    try {
      const response = await fetch(`${options.url}/functions/v1/dispatch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.dispatchKey}`, 'content-type': 'application/json' },
        body: '{}',
        signal: aborter.signal,
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 300)}`);
      lastError = '';
    } catch (error) {
      if (aborter.signal.aborted) return;
      const message = (error as Error).message;
      if (message !== lastError) options.log(`the alert dispatcher failed (retrying every ${intervalMs / 1000} s): ${message}`);
      lastError = message;
    }
  };
  const wake = () => {
    if (aborter.signal.aborted) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await runOnce();
      } while (again && !aborter.signal.aborted);
    })().finally(() => (running = undefined));
  };

  let unlisten: (() => Promise<void>) | undefined;
  try {
    unlisten = (await options.database.listen('agent_status_alerts', wake)).unlisten;
  } catch (error) {
    options.log(`alerts are sent every ${intervalMs / 1000} s (no LISTEN on this database: ${(error as Error).message})`);
  }
  const timer = setInterval(wake, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      aborter.abort();
      await unlisten?.().catch(() => {});
      await running;
    },
  };
}
