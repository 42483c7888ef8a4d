// The status values, event sources and events of agent-status, as TypeScript constants. The database
// defines them (domain public.agent_status_value, the state machine agent_private.next_agent_status,
// agent_commands' checks); tests/db/definitions.test.ts fails if these lists and the database ever
// disagree, so nothing else needs to repeat them.

/** What an agent is doing, as the dashboard shows it. `stale` is inferred: no heartbeat in time. */
export const AGENT_STATUSES = ['running', 'warning', 'error', 'stopped', 'stale'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

/** The statuses an agent or an operator may set explicitly (stale is only ever inferred). */
export const SETTABLE_STATUSES = ['running', 'warning', 'error', 'stopped'] as const;
export type SettableStatus = (typeof SETTABLE_STATUSES)[number];

/** Who set a status or wrote a history row. */
export const EVENT_SOURCES = ['agent', 'runner', 'sweep', 'operator'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** Events of the state machine (docs/state-machine.md). */
export const AGENT_EVENTS = [
  'started',
  'adopted',
  'heartbeat',
  'activity',
  'running',
  'warning',
  'error',
  'stopped',
  'exited',
  'crashed',
  'terminated',
  'stable',
  'deadline',
  'inactive',
  'force',
] as const;
export type AgentEvent = (typeof AGENT_EVENTS)[number];

/** What agents report about themselves through /functions/v1/report (agent_report). */
export const AGENT_REPORT_EVENTS = ['started', 'stopped', 'running', 'warning', 'error', 'activity', 'heartbeat'] as const;
/** What a runner reports about the processes it supervises (agent_report with a runner token). */
export const RUNNER_REPORT_EVENTS = ['adopted', 'exited', 'crashed', 'terminated', 'stable'] as const;

/**
 * A host runner's liveness as runner_status_live reads it: online; silent (no word past two of its
 * heartbeat intervals, read at read time); offline (the sweep recorded the silence); stopped (it said
 * goodbye on SIGTERM: planned, no incident). Only `silent` is never recorded (public.runners.status).
 */
export const RUNNER_STATUSES = ['online', 'silent', 'offline', 'stopped'] as const;
export type RunnerStatus = (typeof RUNNER_STATUSES)[number];
export const RECORDED_RUNNER_STATUSES = ['online', 'offline', 'stopped'] as const;

/**
 * What `list`, `doctor`, the command warnings and the dashboard say of an agent's runner that is not
 * online: "silent (no word for 2 min)", "stopped (said goodbye 5 min ago)"; brief, for a table cell:
 * "silent 2 min", "stopped 5 min ago". Null while it is online or the agent has none. `span` formats
 * seconds the caller's way.
 */
export function runnerAway(
  agent: { runner_id: string | null; runner_status: RunnerStatus | null; runner_silent_s: number | null },
  span: (seconds: number) => string,
  brief = false,
): string | null {
  if (agent.runner_id === null || agent.runner_status === null || agent.runner_status === 'online') return null;
  if (agent.runner_silent_s === null) return agent.runner_status;
  const age = span(agent.runner_silent_s);
  if (agent.runner_status === 'stopped') return brief ? `stopped ${age} ago` : `stopped (said goodbye ${age} ago)`;
  return brief ? `${agent.runner_status} ${age}` : `${agent.runner_status} (no word for ${age})`;
}

/**
 * The words on a dashboard row's badges beside its status (web/src/row.ts): its crash loop, no runner
 * managing it, and "runner silent 2 min" while its runner is not online (runnerAway, brief). The
 * dashboard's search finds an agent by them: agent_private.row_badges says the same words, and
 * tests/db/dashboard-page.test.ts searches for each.
 */
export const ROW_BADGES = { crashLoop: 'crash loop', noRunner: 'no runner', runnerAway: 'runner' } as const;

export const COMMAND_ACTIONS = ['start', 'stop', 'restart'] as const;
export type CommandAction = (typeof COMMAND_ACTIONS)[number];

/** A command waits for its runner while in flight; finished, it has its answer (finished_at set). */
export const IN_FLIGHT_COMMAND_STATUSES = ['pending', 'claimed'] as const;
export const FINISHED_COMMAND_STATUSES = ['succeeded', 'failed', 'expired'] as const;
export const COMMAND_STATUSES = [...IN_FLIGHT_COMMAND_STATUSES, ...FINISHED_COMMAND_STATUSES] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

export function isFinished(status: CommandStatus): boolean {
  return (FINISHED_COMMAND_STATUSES as readonly CommandStatus[]).includes(status);
}

/**
 * A command as it stands at `nowMs` (the database's clock): one still pending past its expires_at is
 * expired already, before the sweep records it (within a minute), as an agent past its deadline reads
 * stale. The dashboard's row and the process manager's answer read commands through this, so a toast
 * never says "pending" while the row says "expired" (issue 19).
 */
export function commandAt<T extends { status: CommandStatus; expires_at: string; result: string | null; via_heartbeat: boolean }>(
  command: T,
  nowMs: number,
): T {
  if (command.status !== 'pending' || Date.parse(command.expires_at) > nowMs) return command;
  // the words the sweep records (agent_status_sweep)
  const result = command.via_heartbeat
    ? 'the agent sent no heartbeat or report to carry it before it expired'
    : 'no runner claimed it before it expired';
  return { ...command, status: 'expired', result };
}

export const TOKEN_KINDS = ['agent', 'runner', 'operator', 'metrics', 'badge'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** Limits the database enforces; the API layers check them first to answer with a friendly 400. */
export const LIMITS = {
  agentName: 100,
  activity: 1000,
  message: 4000,
  health: { min: 0, max: 100 },
  /** A report's details object: nesting levels, and keys plus array items counted over all levels. */
  detailsDepth: 8,
  detailsEntries: 500,
} as const;
