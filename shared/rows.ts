// The rows clients read from the database: the dashboard through PostgREST tables, the CLI through
// the operator read functions. Both get the same columns, so the shapes are written once, here.
import type { Command } from './api/command.ts';
import type { AgentStatus, EventSource } from './status.ts';

/** A row of public.agent_status_live: agent_status with its deadline applied at the database's now(). */
export interface AgentLiveRow {
  id: number;
  agent_name: string;
  /** stale as soon as stale_at has passed, before the sweep persists it */
  status: AgentStatus;
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
  /** null unless the agent is up (counted from started_at) */
  uptime_s: number | null;
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
}

/** A command as public.operator_commands returns it: named by its agent and its runner's host. */
export interface OperatorCommandRow extends Omit<CommandRow, 'agent_id' | 'claimed_by'> {
  agent_name: string;
  claimed_by_host: string | null;
  /** the database's now() when this row was read */
  observed_at: string;
}
