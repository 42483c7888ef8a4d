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

/** Why each command button is disabled for this agent; '' where it is enabled. */
export function blockedCommands(agent: ControlledAgent, command: CommandRow | undefined): { start: string; stop: string; restart: string } {
  const why = agent.runner_id === null ? NO_RUNNER : isInFlight(command) ? `a ${command!.action} is already in flight` : '';
  const state = `${agent.agent_name} is ${agent.status}`;
  return {
    start: why || (canStart(agent) ? '' : state),
    stop: why || (canStop(agent) ? '' : state),
    restart: why,
  };
}
