// Which command buttons make sense for an agent, and why the others are off.
import type { AgentStatus } from '../../shared/status.ts';
import { IN_FLIGHT, type AgentRow, type CommandRow } from './api.ts';

export function isInFlight(command: CommandRow | undefined): boolean {
  return command !== undefined && IN_FLIGHT.includes(command.status);
}

const LIVE: readonly AgentStatus[] = ['running', 'warning', 'stale'];
const DOWN: readonly AgentStatus[] = ['stopped', 'stale'];

// An error agent may still be alive (it reported an error) or gone (it crashed): its pid tells which.
function canStart(agent: AgentRow): boolean {
  return DOWN.includes(agent.status) || (agent.status === 'error' && agent.pid === null);
}

function canStop(agent: AgentRow): boolean {
  return LIVE.includes(agent.status) || (agent.status === 'error' && agent.pid !== null);
}

export const NO_RUNNER = 'no runner manages this agent';

/**
 * The title of an enabled button: for an agent no runner manages, a stop or restart travels in the
 * answer to its next heartbeat, and this says how long that can take.
 */
export function deliveryNote(agent: AgentRow, action: 'start' | 'stop' | 'restart'): string {
  if (agent.runner_id !== null || action === 'start') return '';
  return `${NO_RUNNER}: it gets the ${action} with its next heartbeat, up to ${agent.heartbeat_interval_s ?? agent.heartbeat_timeout_s} s from now`;
}

/** Why each command button is disabled for this agent; '' where it is enabled. */
export function blockedCommands(agent: AgentRow, command: CommandRow | undefined): { start: string; stop: string; restart: string } {
  const state = `${agent.agent_name} is ${agent.status}`;
  const busy = isInFlight(command) ? `a ${command!.action} is already in flight` : '';
  if (agent.runner_id === null) {
    // only a running process can be reached through its heartbeat, and nothing can start one
    return {
      start: `${NO_RUNNER}, so nothing can start it`,
      stop: busy || (canStop(agent) ? '' : state),
      restart: busy || (canStop(agent) ? '' : state),
    };
  }
  return {
    start: busy || (canStart(agent) ? '' : state),
    stop: busy || (canStop(agent) ? '' : state),
    restart: busy,
  };
}
