// When an agent that ended on its own is started again: the restart policy, exponential backoff
// for quick exits, and the point where a crash loop is given up (supervisord's BACKOFF -> FATAL,
// PM2's max_restarts with min_uptime).
import type { RestartPolicy } from './config.ts';

export interface RestartSettings {
  restart: RestartPolicy;
  minUptimeMs: number;
  backoff: { initialMs: number; maxMs: number; maxRetries: number };
}

export interface Exit {
  /** 0 for a clean exit; anything else (or a signal) is a failure. */
  failed: boolean;
  uptimeMs: number;
}

export type RestartDecision =
  | { action: 'none' }
  | { action: 'restart'; delayMs: number; quickExits: number }
  | { action: 'give-up'; quickExits: number };

/**
 * Decides what follows an exit. `quickExits` counts the exits in a row that came sooner than
 * minUptime after their start; a run that lasted longer resets it, so a long-lived agent that
 * crashes once is restarted at once (no delay), and only a crash loop backs off.
 */
export function decideRestart(settings: RestartSettings, exit: Exit, quickExitsBefore: number): RestartDecision {
  const wanted = settings.restart === 'always' || (settings.restart === 'on-failure' && exit.failed);
  if (!wanted) return { action: 'none' };
  const quick = exit.uptimeMs < settings.minUptimeMs;
  const quickExits = quick ? quickExitsBefore + 1 : 0;
  if (quickExits > settings.backoff.maxRetries) return { action: 'give-up', quickExits };
  const delayMs = quickExits === 0 ? 0 : Math.min(settings.backoff.initialMs * 2 ** (quickExits - 1), settings.backoff.maxMs);
  return { action: 'restart', delayMs, quickExits };
}
