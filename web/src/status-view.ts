// How each status looks on screen (the database ranks them: dashboard_agent_page). Keyed by the shared AgentStatus type, so adding a status
// to shared/status.ts fails the type check here until it has a look.
import type { AgentStatus } from '../../shared/status.ts';
import { h } from './dom.ts';

// A shape as well as a colour, so the status never depends on colour vision.
const ICONS: Record<AgentStatus, string> = {
  running: '●',
  warning: '▲',
  error: '✖',
  stopped: '■',
  stale: '◌',
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
