// One agent's row. It keeps references to its cells and writes only what changed, so a poll that
// changes one agent out of 2,000 touches one row's DOM.
import type { CommandAction } from '../../shared/status.ts';
import type { AgentRow, CommandRow } from './api.ts';
import { h, setText } from './dom.ts';
import { blockedCommands, isInFlight, NO_RUNNER } from './controls.ts';
import { paintChip } from './status-view.ts';
import { formatAgo, formatDuration, type DbClock } from './time.ts';

export interface RowHandlers {
  command(agent: AgentRow, action: CommandAction): void;
  forceStop(agent: AgentRow): void;
}

export function agentHref(name: string): string {
  return `#/agents/${encodeURIComponent(name)}`;
}

/**
 * What a row says about its latest command: in flight, or why it failed. Empty when nothing to say,
 * and once the agent's status changed after the failure: the note would describe a past state.
 */
export function commandNote(command: CommandRow | undefined, agent: { status_changed_at: string }): { text: string; failed: boolean } {
  if (!command) return { text: '', failed: false };
  if (isInFlight(command)) {
    return { text: `${command.action} ${command.status === 'claimed' ? 'in progress' : 'pending'}…`, failed: false };
  }
  const superseded = command.finished_at !== null && Date.parse(agent.status_changed_at) > Date.parse(command.finished_at);
  if ((command.status === 'failed' || command.status === 'expired') && !superseded) {
    return { text: `${command.action} ${command.status}: ${command.result ?? 'no reason given'}`, failed: true };
  }
  return { text: '', failed: false };
}

export class AgentRowView {
  readonly el: HTMLDivElement;
  agent: AgentRow;
  command: CommandRow | undefined;
  private readonly link: HTMLAnchorElement;
  private readonly host: HTMLSpanElement;
  private readonly hostNote: HTMLSpanElement;
  private readonly chip: HTMLSpanElement;
  private readonly reason: HTMLSpanElement;
  private readonly commandText: HTMLSpanElement;
  private readonly bar: HTMLSpanElement;
  private readonly healthText: HTMLSpanElement;
  private readonly activity: HTMLSpanElement;
  private readonly activityAgo: HTMLSpanElement;
  private readonly heartbeat: HTMLDivElement;
  private readonly uptime: HTMLDivElement;
  private readonly start: HTMLButtonElement;
  private readonly stop: HTMLButtonElement;
  private readonly restart: HTMLButtonElement;
  private readonly menu: HTMLDetailsElement;
  private lastState = '';

  constructor(agent: AgentRow, handlers: RowHandlers) {
    this.agent = agent;
    const name = agent.agent_name;
    const act = (action: CommandAction) => () => {
      this.menu.open = false;
      handlers.command(this.agent, action);
    };
    this.link = h('a', { class: 'name', href: agentHref(name), text: name, title: name });
    this.host = h('span', { class: 'host' });
    this.hostNote = h('span', { class: 'note' });
    this.chip = h('span', { class: 'chip' });
    this.reason = h('span', { class: 'reason' });
    this.commandText = h('span', { class: 'command', role: 'status' });
    this.bar = h('span', { class: 'fill' });
    this.healthText = h('span', { class: 'num' });
    this.activity = h('span', { class: 'activity' });
    this.activityAgo = h('span', { class: 'ago' });
    this.heartbeat = h('div', { class: 'cell c-heartbeat', role: 'cell', 'data-label': 'Heartbeat' });
    this.uptime = h('div', { class: 'cell c-uptime', role: 'cell', 'data-label': 'Uptime' });
    this.start = h('button', { type: 'button', class: 'btn', 'aria-label': `Start ${name}`, on: { click: act('start') } }, 'Start');
    this.stop = h('button', { type: 'button', class: 'btn', 'aria-label': `Stop ${name}`, on: { click: act('stop') } }, 'Stop');
    this.restart = h('button', { type: 'button', role: 'menuitem', on: { click: act('restart') } }, 'Restart');
    this.menu = h(
      'details',
      { class: 'menu' },
      h('summary', { 'aria-label': `More actions for ${name}`, title: 'More actions' }, '▾'),
      h(
        'div',
        { class: 'menu-items', role: 'menu' },
        this.restart,
        h(
          'button',
          {
            type: 'button',
            role: 'menuitem',
            class: 'danger',
            on: {
              click: () => {
                this.menu.open = false;
                handlers.forceStop(this.agent);
              },
            },
          },
          'Force stop…',
        ),
        h('a', { role: 'menuitem', href: agentHref(name) }, 'Details'),
      ),
    );
    // A class rather than :has(details[open]) in CSS: :has made Chromium re-check every row's
    // style when any row moved.
    this.menu.addEventListener('toggle', () => this.el.classList.toggle('menu-open', this.menu.open));
    this.el = h(
      'div',
      { class: 'row', role: 'row', 'data-agent': name },
      h('div', { class: 'cell c-name', role: 'cell' }, this.link),
      h('div', { class: 'cell c-host', role: 'cell', 'data-label': 'Host' }, this.host, this.hostNote),
      h('div', { class: 'cell c-status', role: 'cell', 'data-label': 'Status' }, this.chip, this.reason, this.commandText),
      h(
        'div',
        { class: 'cell c-health', role: 'cell', 'data-label': 'Health' },
        h('span', { class: 'bar', 'aria-hidden': 'true' }, this.bar),
        this.healthText,
      ),
      h('div', { class: 'cell c-activity', role: 'cell', 'data-label': 'Last activity' }, this.activity, this.activityAgo),
      this.heartbeat,
      this.uptime,
      h('div', { class: 'cell c-actions', role: 'cell' }, this.start, this.stop, this.menu),
    );
  }

  /** Takes a poll's data; repaints only if something shown (other than ages) changed. */
  update(agent: AgentRow, command: CommandRow | undefined): void {
    this.agent = agent;
    this.command = command;
    // Most polls change nothing but ages; compare the fields that drive the DOM in one string.
    const state = [
      agent.status,
      agent.health,
      agent.host,
      agent.runner_id,
      agent.runner_online,
      agent.status_reason,
      agent.last_activity,
      agent.pid,
      command?.id,
      command?.status,
      command?.result,
    ].join('\u0000');
    if (state !== this.lastState) {
      this.lastState = state;
      this.paint(agent, command);
    }
  }

  private paint(agent: AgentRow, command: CommandRow | undefined) {
    this.el.dataset.status = agent.status;
    paintChip(this.chip, agent.status);
    setText(this.host, agent.host ?? '–');
    this.host.title = agent.host ?? '';
    const managed = agent.runner_id !== null;
    setText(this.hostNote, !managed ? 'no runner' : agent.runner_online === false ? 'runner offline' : '');
    this.hostNote.title = !managed ? NO_RUNNER : agent.runner_online === false ? 'commands wait until the runner is back, then expire' : '';
    setText(this.reason, agent.status === 'running' || agent.status === 'stopped' ? '' : (agent.status_reason ?? ''));
    this.reason.title = agent.status_reason ?? '';
    const note = commandNote(command, agent);
    setText(this.commandText, note.text);
    this.commandText.classList.toggle('failed', note.failed);
    this.commandText.title = note.text;
    this.bar.style.width = `${agent.health}%`;
    this.bar.className = `fill ${agent.health < 40 ? 'low' : agent.health < 70 ? 'mid' : 'high'}`;
    setText(this.healthText, String(agent.health));
    setText(this.activity, agent.last_activity ?? '');
    this.activity.title = agent.last_activity ?? '';

    const blocked = blockedCommands(agent, command);
    for (const [button, why] of [
      [this.start, blocked.start],
      [this.stop, blocked.stop],
      [this.restart, blocked.restart],
    ] as const) {
      button.disabled = why !== '';
      button.title = why;
    }
  }

  /** Refreshes the ages (heartbeat, uptime, activity) from the last poll's clock. */
  tick(clock: DbClock): void {
    const agent = this.agent;
    setText(this.heartbeat, formatAgo(clock.since(agent.last_heartbeat)));
    setText(this.uptime, agent.uptime_s === null ? '–' : formatDuration(clock.since(agent.started_at)));
    setText(this.activityAgo, agent.last_activity_at ? formatAgo(clock.since(agent.last_activity_at)) : '');
  }
}
