// Which command buttons make sense for an agent, and why the others are off.
import { type AgentStatus, isFinished } from '../../shared/status.ts';
import type { AgentRow, CommandRow } from './api.ts';

/** Whether the command still waits for its runner: its agent's row shows it as in flight. */
export function isInFlight(command: CommandRow | undefined): boolean {
  return command !== undefined && !isFinished(command.status);
}

const LIVE: readonly AgentStatus[] = ['running', 'warning', 'stale'];
const DOWN: readonly AgentStatus[] = ['stopped', 'stale'];

/** What the buttons depend on. */
type ControlledAgent = Pick<AgentRow, 'agent_name' | 'status' | 'pid' | 'runner_id'>;

// An error agent may still be alive (it reported an error) or gone (it crashed): its pid tells which.
function canStart(agent: ControlledAgent): boolean {
  return DOWN.includes(agent.status) || (agent.status === 'error' && agent.pid === null);
}

function canStop(agent: ControlledAgent): boolean {
  return LIVE.includes(agent.status) || (agent.status === 'error' && agent.pid !== null);
}

export const NO_RUNNER = 'no runner manages this agent';

/**
 * The title of an enabled button: for an agent no runner manages, a stop or restart travels in the
 * answer to its next heartbeat, and this says how long that can take.
 */
export function deliveryNote(
  agent: Pick<AgentRow, 'runner_id' | 'heartbeat_interval_s' | 'heartbeat_timeout_s'>,
  action: 'start' | 'stop' | 'restart',
): string {
  if (agent.runner_id !== null || action === 'start') return '';
  return `${NO_RUNNER}: it gets the ${action} with its next heartbeat, up to ${agent.heartbeat_interval_s ?? agent.heartbeat_timeout_s} s from now`;
}

/** Why each command button is disabled for this agent; '' where it is enabled. */
export function blockedCommands(agent: ControlledAgent, command: CommandRow | undefined): { start: string; stop: string; restart: string } {
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
