// How each status looks and ranks on screen. Keyed by the shared AgentStatus type, so adding a status
// to shared/status.ts fails the type check here until it has a look.
import { AGENT_STATUSES, type AgentStatus } from '../../shared/status.ts';
import type { AgentRow, CommandRow } from './api.ts';
import { IN_FLIGHT } from './api.ts';
import { h } from './dom.ts';

export { AGENT_STATUSES };

// A shape as well as a colour, so the status never depends on colour vision.
const ICONS: Record<AgentStatus, string> = {
  running: '●',
  warning: '▲',
  error: '✖',
  stopped: '■',
  stale: '◌',
};

/** Default sort: what needs attention first. */
export const SEVERITY: Record<AgentStatus, number> = {
  error: 0,
  stale: 1,
  warning: 2,
  running: 3,
  stopped: 4,
};

const DESCRIPTIONS: Record<AgentStatus, string> = {
  running: 'running and reporting',
  warning: 'running, reported a warning',
  error: 'reported an error or crashed',
  stopped: 'not running',
  stale: 'no heartbeat in time: hung or dead',
};

export function statusChip(status: AgentStatus): HTMLSpanElement {
  const chip = h('span', { class: 'chip' });
  paintChip(chip, status);
  return chip;
}

export function paintChip(chip: HTMLElement, status: AgentStatus): void {
  chip.className = `chip chip-${status}`;
  chip.title = DESCRIPTIONS[status];
  chip.textContent = `${ICONS[status]} ${status}`;
}

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

/** Why each command button is disabled for this agent; '' where it is enabled. */
export function blockedCommands(agent: AgentRow, command: CommandRow | undefined): { start: string; stop: string; restart: string } {
  const why = agent.runner_id === null ? NO_RUNNER : isInFlight(command) ? `a ${command!.action} is already in flight` : '';
  const state = `${agent.agent_name} is ${agent.status}`;
  return {
    start: why || (canStart(agent) ? '' : state),
    stop: why || (canStop(agent) ? '' : state),
    restart: why,
  };
}
