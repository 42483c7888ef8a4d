// Waiting between retries: exponential backoff with full jitter (so runners that lost the database
// together do not all come back in the same millisecond), and a sleep that a stop cuts short.
import { setTimeout as delay } from 'node:timers/promises';

/** The wait before retry number `attempt` (1, 2, ...): random in [0.5, 1] x min(base x 2^(attempt-1), max). */
export function retryDelay(attempt: number, baseMs = 200, maxMs = 10_000): number {
  const ceiling = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), maxMs);
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}

/** Sleeps ms; resolves false at once when signal aborts (before or during the wait). */
export async function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return false;
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
