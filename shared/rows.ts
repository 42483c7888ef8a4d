// The rows clients read from the database: the dashboard through PostgREST tables, the CLI through
// the operator read functions. Both get the same columns, so the shapes are written once, here; a
// client that reads fewer columns picks them from these (web/src/api.ts), so TypeScript refuses a
// field it does not fetch.
import type { Command } from './api/command.ts';
import type { AgentStatus, EventSource, RECORDED_RUNNER_STATUSES, RunnerStatus } from './status.ts';

/**
 * The columns of public.agent_status_live, in the view's order: the one list of the agent row.
 * tests/db/definitions.test.ts fails when the view and this list disagree; the row types (AgentLiveRow
 * below, the dashboard's AgentRow) are picked by it.
 */
export const AGENT_LIVE_COLUMNS = [
  'id',
  'agent_name',
  'status',
  'health',
  'last_heartbeat',
  'last_error',
  'last_activity',
  'updated_at',
  'recorded_status',
  'status_source',
  'status_reason',
  'status_changed_at',
  'host',
  'runner_id',
  'runner_online',
  'runner_last_seen_at',
  'pid',
  'started_at',
  'stopped_at',
  'exit_code',
  'exit_signal',
  'last_activity_at',
  'heartbeat_timeout_s',
  'activity_timeout_s',
  'stale_at',
  'inactive_at',
  'metadata',
  'observed_at',
  'seconds_since_heartbeat',
  'uptime_s',
  'down_s',
  'runner_status',
  'runner_silent_s',
  'runner_heartbeat_interval_s',
  'restarts_total',
  'restarts_10m',
  'last_restart_at',
  'crash_looping',
  'unstable_since',
  'next_restart_at',
  'last_warning',
  'last_warning_at',
  'last_error_at',
  'warnings_1h',
  'warnings_24h',
  'errors_1h',
  'errors_24h',
  'heartbeat_interval_s',
  'heartbeat_timeout_source',
  'crashes_10m',
  'health_reported_at',
] as const;
export type AgentLiveColumn = (typeof AGENT_LIVE_COLUMNS)[number];

/** The type of each column of public.agent_status_live. */
interface AgentLiveFields {
  id: number;
  agent_name: string;
  /** stale as soon as stale_at has passed, before the sweep persists it */
  status: AgentStatus;
  /** the seed's column: 0 until somebody reports one; read health_reported_at before showing it */
  health: number;
  last_heartbeat: string | null;
  last_error: string | null;
  last_activity: string | null;
  updated_at: string;
  /** the status as stored */
  recorded_status: AgentStatus;
  status_source: EventSource;
  status_reason: string | null;
  status_changed_at: string;
  host: string | null;
  runner_id: string | null;
  runner_online: boolean | null;
  runner_last_seen_at: string | null;
  pid: number | null;
  started_at: string | null;
  stopped_at: string | null;
  exit_code: number | null;
  exit_signal: string | null;
  last_activity_at: string | null;
  heartbeat_timeout_s: number;
  activity_timeout_s: number | null;
  stale_at: string | null;
  inactive_at: string | null;
  metadata: Record<string, unknown>;
  /** the database's now() when this row was read: ages are computed against it, never a local clock */
  observed_at: string;
  seconds_since_heartbeat: number | null;
  /** null unless a process is known to run (counted from started_at); one that ended is down, a stale one may be */
  uptime_s: number | null;
  /** seconds since its process ended, while it reads stopped or error */
  down_s: number | null;
  /** its runner's liveness at read time: silent once two of the runner's heartbeat intervals pass */
  runner_status: RunnerStatus | null;
  /** seconds since its runner was last heard from (its goodbye, if stopped), when the runner is not online */
  runner_silent_s: number | null;
  runner_heartbeat_interval_s: number | null;
  /** restarts after a crash: ever, and in the last 10 minutes */
  restarts_total: number;
  restarts_10m: number;
  last_restart_at: string | null;
  /** a crash loop: crashes_10m is 3 or more and it has not been stable since (agent_private.crash_looping) */
  crash_looping: boolean;
  unstable_since: string | null;
  /** when its runner will start it again, while it waits (backoff) and the runner is online */
  next_restart_at: string | null;
  /** the latest warning (reported, or the sweep's "no activity") and error, kept after it recovers */
  last_warning: string | null;
  last_warning_at: string | null;
  last_error_at: string | null;
  warnings_1h: number;
  warnings_24h: number;
  /** errors reported and crashes, counting the repeats a crash loop folded into one history row */
  errors_1h: number;
  errors_24h: number;
  /** the heartbeat interval its SDK declared */
  heartbeat_interval_s: number | null;
  /** where heartbeat_timeout_s comes from */
  heartbeat_timeout_source: 'operator' | 'config' | 'interval' | 'default';
  /** unplanned exits (crashes) in the last 10 minutes */
  crashes_10m: number;
  /**
   * when an agent, its runner or an operator last gave `health`; null while it is the state machine's
   * default (nobody reported one since the process started): show it as not reported, never as a figure
   */
  health_reported_at: string | null;
}

/**
 * A row of public.agent_status_live: agent_status with its deadline applied at the database's now().
 * Picked by the list, so a column missing from AgentLiveFields does not compile.
 */
export type AgentLiveRow = Pick<AgentLiveFields, AgentLiveColumn>;

/**
 * The health an agent's row shows: the figure somebody reported, or null while `health` only holds the
 * state machine's default (shown as HEALTH_NOT_REPORTED or "–", never as 0, which reads as unhealthy).
 */
export function reportedHealth(row: Pick<AgentLiveRow, 'health' | 'health_reported_at'>): number | null {
  return row.health_reported_at === null ? null : row.health;
}

/** What a health nobody reported is called, and why, wherever a row is shown. */
export const HEALTH_NOT_REPORTED = 'not reported';
export const HEALTH_NOT_REPORTED_WHY = 'not reported: the agent has not said its health since its process last started or ended';

/** The values of `columns` in `row`, as one string: equal strings, nothing among them changed. */
export function columnsKey<Row, Column extends keyof Row>(row: Row, columns: readonly Column[]): string {
  return JSON.stringify(columns.map((column) => row[column]));
}

/** A row of public.runner_status_live: a runner with its liveness deadline applied at read time. */
export interface RunnerLiveRow {
  id: string;
  host: string;
  /** silent once two of its heartbeat intervals pass without a word; offline once swept; stopped after its goodbye */
  status: RunnerStatus;
  recorded_status: (typeof RECORDED_RUNNER_STATUSES)[number];
  version: string | null;
  pid: number | null;
  started_at: string;
  last_seen_at: string;
  stopped_at: string | null;
  heartbeat_interval_s: number | null;
  silent_after_s: number;
  silent_s: number | null;
  metadata: Record<string, unknown>;
  observed_at: string;
}

/** A row of public.agent_events, the append-only history. */
export interface AgentEventRow {
  id: number;
  at: string;
  /** a state-machine event (shared/status.ts AGENT_EVENTS) or command_* / runner_* */
  kind: string;
  source: EventSource;
  actor: string | null;
  from_status: AgentStatus | null;
  to_status: AgentStatus | null;
  health: number | null;
  message: string | null;
  /** log_tail: the last stderr lines a runner captured; exit codes and signals; command ids */
  details: { log_tail?: string[]; exit_code?: number; exit_signal?: string; [key: string]: unknown };
}

/**
 * A row of public.agent_commands. The command API's answer (shared/api/command.ts Command) is the
 * source: the same columns, with the agent's id where Command names it.
 */
export interface CommandRow extends Omit<Command, 'agent_name'> {
  claimed_at: string | null;
  /** the runner's id */
  claimed_by: string | null;
  finished_at: string | null;
  result: string | null;
  /** for an agent no runner manages: carried by the answer to its heartbeat */
  via_heartbeat: boolean;
}

/** A command as public.operator_commands returns it: named by its agent and its runner's host. */
export interface OperatorCommandRow extends Omit<CommandRow, 'agent_id' | 'claimed_by' | 'via_heartbeat'> {
  agent_name: string;
  claimed_by_host: string | null;
  /** the database's now() when this row was read */
  observed_at: string;
}
