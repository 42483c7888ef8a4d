// When an agent that ended on its own is started again: the restart policy, exponential backoff
// for every unplanned exit (PM2's exp_backoff_restart_delay), reset once a run lasts the stable
// period, and the point where a loop of quick exits is given up (supervisord's BACKOFF -> FATAL,
// PM2's max_restarts with min_uptime).
import type { RestartPolicy } from './config.ts';

export interface RestartSettings {
  restart: RestartPolicy;
  minUptimeMs: number;
  backoff: { initialMs: number; maxMs: number; maxRetries: number; resetAfterMs: number };
}

export interface Exit {
  /** 0 for a clean exit; anything else (or a signal) is a failure. */
  failed: boolean;
  uptimeMs: number;
}

/** Exits in a row since the agent last ran for the stable period. */
export interface Streak {
  /** unplanned exits (failures) */
  failures: number;
  /** exits sooner than minUptime after their start */
  quickExits: number;
}

export type RestartDecision =
  | { action: 'none'; streak: Streak }
  | { action: 'restart'; delayMs: number; streak: Streak }
  | { action: 'give-up'; streak: Streak };

export const NO_STREAK: Streak = { failures: 0, quickExits: 0 };

/**
 * Decides what follows an exit. A run that lasted the stable period resets the streak, so an agent
 * that crashes once after a good run is restarted at once; the next failure before it is stable
 * again waits `initial`, then twice as long each time up to `max`. A program that dies a few
 * seconds after each start (past min_uptime) therefore backs off instead of restarting every 2 s
 * forever. More than maxRetries quick exits in a row give up: it cannot even start.
 */
export function decideRestart(settings: RestartSettings, exit: Exit, before: Streak): RestartDecision {
  const base = exit.uptimeMs >= settings.backoff.resetAfterMs ? NO_STREAK : before;
  const streak: Streak = {
    failures: exit.failed ? base.failures + 1 : base.failures,
    quickExits: exit.uptimeMs < settings.minUptimeMs ? base.quickExits + 1 : 0,
  };
  const wanted = settings.restart === 'always' || (settings.restart === 'on-failure' && exit.failed);
  if (!wanted) return { action: 'none', streak };
  if (streak.quickExits > settings.backoff.maxRetries) return { action: 'give-up', streak };
  const delayMs = streak.failures <= 1 ? 0 : Math.min(settings.backoff.initialMs * 2 ** (streak.failures - 2), settings.backoff.maxMs);
  return { action: 'restart', delayMs, streak };
}
