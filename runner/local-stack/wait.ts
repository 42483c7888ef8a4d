import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls check until it returns true, for at most timeoutMs; gives up early when failed() says the
 * thing waited for is gone (a child that exited). Throws with what was waited for.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; failed?: () => string | undefined },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError = '';
  for (;;) {
    const failure = options.failed?.();
    if (failure) throw new Error(`${what}: ${failure}`);
    try {
      if (await check()) return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} did not happen within ${options.timeoutMs / 1000} s${lastError ? ` (last error: ${lastError})` : ''}`);
    }
    await sleep(100);
  }
}

/** True when an HTTP GET answers with a status below 500 (the server is up, whatever it thinks of us). */
export async function answers(url: string, okStatus?: number): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.body?.cancel();
  return okStatus === undefined ? response.status < 500 : response.status === okStatus;
}
