// One agent's row. It keeps references to its cells and writes only what changed, so a poll that
// changes one agent out of 2,000 touches one row's DOM.
import { type CommandAction, ROW_BADGES, runnerAway } from '../../shared/status.ts';
import { columnsKey, HEALTH_NOT_REPORTED_WHY, reportedHealth } from '../../shared/rows.ts';
import type { AgentRow, CommandRow, ResourceRow } from './api.ts';
import { h, setText } from './dom.ts';
import { blockedCommands, deliveryNote, isInFlight, NO_RUNNER } from './controls.ts';
import { paintChip } from './status-view.ts';
import { formatAgo, formatDuration, type DbClock } from './time.ts';
import { formatBytes, formatCpu } from './units.ts';

// Figures older than this are not shown as current: the runner sends them about once a minute.
const RESOURCES_FRESH_S = 180;

export interface RowHandlers {
  command(agent: AgentRow, action: CommandAction): void;
  forceStop(agent: AgentRow): void;
}

export function agentHref(name: string): string {
  return `#/agents/${encodeURIComponent(name)}`;
}

/** Whether the agent's runner is not there to act (the database's verdict, runner_status_live): silent, offline or stopped. */
export function runnerSilent(agent: Pick<AgentRow, 'runner_id' | 'runner_status'>): boolean {
  return agent.runner_id !== null && agent.runner_status !== null && agent.runner_status !== 'online';
}

/**
 * "silent (no word for 2 min)", "stopped (said goodbye 5 min ago)" (brief: "silent 2 min"): the
 * agent's runner when it is not online, its age ticking from the read (runner_silent_s at
 * observed_at); null while it is online.
 */
export function runnerAwayNow(
  agent: Pick<AgentRow, 'runner_id' | 'runner_status' | 'runner_silent_s' | 'observed_at'>,
  clock: DbClock,
  brief = false,
): string | null {
  const silent = agent.runner_silent_s === null ? null : agent.runner_silent_s + (clock.since(agent.observed_at) ?? 0);
  return runnerAway({ ...agent, runner_silent_s: silent }, formatDuration, brief);
}

/**
 * The latest error or warning with its age ("error 4 min ago: disk full"), kept on the row after the
 * agent recovered (it reads running again); null while the status itself tells the story.
 */
export function latestProblem(agent: AgentRow, clock: DbClock): string | null {
  const errorAt = agent.last_error_at ? Date.parse(agent.last_error_at) : -Infinity;
  const warningAt = agent.last_warning_at ? Date.parse(agent.last_warning_at) : -Infinity;
  // in warning or error the reason on the row is the problem itself; stale and stopped say their own
  if (agent.status !== 'running' || (runnerSilent(agent) && agent.status_reason)) return null;
  if (errorAt === -Infinity && warningAt === -Infinity) return null;
  const [kind, at, text] =
    errorAt >= warningAt ? ['error', agent.last_error_at, agent.last_error] : ['warning', agent.last_warning_at, agent.last_warning];
  return `${kind} ${formatAgo(clock.since(at))}: ${(text ?? '').split('\n')[0]}`;
}

/** Whether the agent's process runs, as far as the database knows: started and not ended since. */
export function processRuns(agent: AgentRow): boolean {
  return agent.started_at !== null && agent.stopped_at === null && agent.status !== 'stopped';
}

/**
 * How long the agent has been up, and only while its process runs. Otherwise how long it has been
 * down: "exited 2 h ago" for a process that ended, "down 3 min" for one that failed (crashed, or an
 * error with no process), "silent 40 s" when nothing has been heard of it (stale: hung or dead).
 */
export function lifeText(agent: AgentRow, clock: DbClock): string {
  if (agent.status === 'stale') return `silent ${formatDuration(clock.since(agent.last_heartbeat ?? agent.status_changed_at))}`;
  if (processRuns(agent)) return formatDuration(clock.since(agent.started_at));
  const since = agent.stopped_at ?? agent.status_changed_at;
  if (agent.status === 'error') return `down ${formatDuration(clock.since(since))}`;
  if (agent.stopped_at === null && agent.started_at === null) return '–';
  return `${agent.exit_code !== null || agent.exit_signal ? 'exited' : 'stopped'} ${formatAgo(clock.since(since))}`;
}

/** CPU and memory as the row shows them; empty while the process is not running or figures are old. */
export function resourceText(
  agent: AgentRow,
  resource: ResourceRow | undefined,
  clock: DbClock,
): { cpu: string; memory: string; title: string } {
  const age = resource ? clock.since(resource.sampled_at) : null;
  if (!resource || !processRuns(agent) || age === null || age > RESOURCES_FRESH_S) {
    return { cpu: '–', memory: '–', title: processRuns(agent) ? 'no figures from the runner yet' : 'not running' };
  }
  return {
    cpu: formatCpu(resource.cpu_percent),
    memory: formatBytes(resource.memory_bytes),
    title: `${formatCpu(resource.cpu_percent)} of one core, ${formatBytes(resource.memory_bytes)} resident, ${resource.processes} process${resource.processes === 1 ? '' : 'es'}; read ${formatAgo(age)}`,
  };
}

/**
 * What a row says about its latest command: in flight, or why it failed. Empty when nothing to say,
 * and once the agent's status changed after the failure: the note would describe a past state.
 */
export function commandNote(
  command: CommandRow | undefined,
  agent: { status_changed_at: string; runner_id: string | null },
): { text: string; failed: boolean } {
  if (!command) return { text: '', failed: false };
  if (isInFlight(command)) {
    const how = agent.runner_id === null && command.status === 'pending' ? ' (waits for its next heartbeat)' : '';
    return { text: `${command.action} ${command.status === 'claimed' ? 'in progress' : 'pending'}…${how}`, failed: false };
  }
  const superseded = command.finished_at !== null && Date.parse(agent.status_changed_at) > Date.parse(command.finished_at);
  if ((command.status === 'failed' || command.status === 'expired') && !superseded) {
    return { text: `${command.action} ${command.status}: ${command.result ?? 'no reason given'}`, failed: true };
  }
  return { text: '', failed: false };
}

// What paint() reads of an agent, and its type: a poll that changes none of these (ages change at
// every poll; tick() writes those) leaves the row's DOM alone.
const PAINTED = [
  'agent_name',
  'status',
  'status_changed_at',
  'health',
  'host',
  'runner_id',
  'runner_status',
  'pid',
  'crash_looping',
  'crashes_10m',
  'restarts_10m',
  'next_restart_at',
  'last_activity',
  // the title of Stop and Restart for an agent no runner manages (controls.ts deliveryNote)
  'heartbeat_interval_s',
  'heartbeat_timeout_s',
] as const satisfies readonly (keyof AgentRow)[];
type PaintedAgent = Pick<AgentRow, (typeof PAINTED)[number]>;

export class AgentRowView {
  readonly el: HTMLDivElement;
  agent: AgentRow;
  command: CommandRow | undefined;
  resource: ResourceRow | undefined;
  private readonly link: HTMLAnchorElement;
  private readonly host: HTMLSpanElement;
  private readonly hostNote: HTMLSpanElement;
  private readonly chip: HTMLSpanElement;
  private readonly reason: HTMLSpanElement;
  private readonly commandText: HTMLSpanElement;
  private readonly bar: HTMLSpanElement;
  private readonly barTrack: HTMLSpanElement;
  private readonly healthText: HTMLSpanElement;
  private readonly activity: HTMLSpanElement;
  private readonly activityAgo: HTMLSpanElement;
  private readonly heartbeat: HTMLDivElement;
  private readonly uptime: HTMLDivElement;
  private readonly uptimeText: HTMLSpanElement;
  private readonly restarts: HTMLSpanElement;
  private readonly badge: HTMLSpanElement;
  private readonly cpu: HTMLDivElement;
  private readonly memory: HTMLDivElement;
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
    this.barTrack = h('span', { class: 'bar', 'aria-hidden': 'true' }, this.bar);
    this.healthText = h('span', { class: 'num' });
    this.activity = h('span', { class: 'activity' });
    this.activityAgo = h('span', { class: 'ago' });
    this.heartbeat = h('div', { class: 'cell c-heartbeat', role: 'cell', 'data-label': 'Heartbeat' });
    this.uptimeText = h('span', { class: 'life' });
    this.restarts = h('span', { class: 'restarts' });
    this.uptime = h('div', { class: 'cell c-uptime', role: 'cell', 'data-label': 'Uptime' }, this.uptimeText, this.restarts);
    this.badge = h('span', { class: 'badge badge-crash', hidden: true }, ROW_BADGES.crashLoop);
    this.cpu = h('div', { class: 'cell c-cpu', role: 'cell', 'data-label': 'CPU' });
    this.memory = h('div', { class: 'cell c-memory', role: 'cell', 'data-label': 'Memory' });
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
      h('div', { class: 'cell c-status', role: 'cell', 'data-label': 'Status' }, this.chip, this.badge, this.reason, this.commandText),
      h('div', { class: 'cell c-health', role: 'cell', 'data-label': 'Health' }, this.barTrack, this.healthText),
      h('div', { class: 'cell c-activity', role: 'cell', 'data-label': 'Last activity' }, this.activity, this.activityAgo),
      this.heartbeat,
      this.uptime,
      this.cpu,
      this.memory,
      h('div', { class: 'cell c-actions', role: 'cell' }, this.start, this.stop, this.menu),
    );
  }

  /** Takes a poll's data; repaints only if something shown (other than ages) changed. */
  update(agent: AgentRow, command: CommandRow | undefined, resource: ResourceRow | undefined): void {
    this.agent = agent;
    this.command = command;
    this.resource = resource;
    // Most polls change nothing but ages; compare what paint() reads in one string.
    // whether its health was reported, not when: a heartbeat carrying the same health repaints nothing
    const health = reportedHealth(agent);
    const state = `${columnsKey(agent, PAINTED)}${health === null}${JSON.stringify(command ?? null)}`;
    if (state !== this.lastState) {
      this.lastState = state;
      this.paint(agent, health, command);
    }
  }

  /** health: reportedHealth(agent), null when nobody reported it */
  private paint(agent: PaintedAgent, health: number | null, command: CommandRow | undefined) {
    this.el.dataset.status = agent.status;
    // for alerts/pauses.ts, whose stylesheet marks the rows of a paused host
    this.el.dataset.host = agent.host ?? '';
    paintChip(this.chip, agent.status);
    setText(this.host, agent.host ?? '–');
    this.host.title = agent.host ?? '';
    const managed = agent.runner_id !== null;
    if (!managed) setText(this.hostNote, ROW_BADGES.noRunner);
    else if (!runnerSilent(agent)) setText(this.hostNote, '');
    this.hostNote.title = !managed
      ? NO_RUNNER
      : runnerSilent(agent)
        ? agent.runner_status === 'stopped'
          ? 'the runner on this host was stopped (it said goodbye): nothing supervises its agents, and commands wait until a runner starts there, then expire'
          : 'the runner on this host stopped reporting: its agents may be dead or alive, and commands wait until it is back, then expire'
        : '';
    this.badge.hidden = !agent.crash_looping;
    this.badge.title = agent.crash_looping
      ? `crashed ${agent.crashes_10m} times in the last 10 minutes and not stable since${agent.next_restart_at ? '; the runner starts it again soon' : ''}`
      : '';
    const note = commandNote(command, agent);
    setText(this.commandText, note.text);
    this.commandText.classList.toggle('failed', note.failed);
    this.commandText.title = note.text;
    // not reported: no bar and no figure (an empty bar and "0" read as a dead agent); the track keeps its room
    this.barTrack.style.visibility = health === null ? 'hidden' : '';
    this.bar.style.width = `${health ?? 0}%`;
    // the status's colour, never the number's: an agent in error at health 90 must not look fine
    this.bar.className = `fill fill-${agent.status}`;
    setText(this.healthText, health === null ? '–' : String(health));
    this.healthText.title = health === null ? HEALTH_NOT_REPORTED_WHY : '';
    setText(this.activity, agent.last_activity ?? '');
    this.activity.title = agent.last_activity ?? '';

    const blocked = blockedCommands(agent, command);
    for (const [action, button] of [
      ['start', this.start],
      ['stop', this.stop],
      ['restart', this.restart],
    ] as const) {
      button.disabled = blocked[action] !== '';
      button.title = blocked[action] || deliveryNote(agent, action);
    }
  }

  /** Refreshes the ages (heartbeat, uptime, activity, a silent runner) from the last poll's clock. */
  tick(clock: DbClock): void {
    const agent = this.agent;
    setText(this.heartbeat, formatAgo(clock.since(agent.last_heartbeat)));
    setText(this.uptimeText, lifeText(agent, clock));
    setText(this.activityAgo, agent.last_activity_at ? formatAgo(clock.since(agent.last_activity_at)) : '');
    const away = runnerAwayNow(agent, clock, true);
    if (away) setText(this.hostNote, `${ROW_BADGES.runnerAway} ${away}`);
    setText(this.restarts, agent.restarts_total ? `↻ ${agent.restarts_total} restart${agent.restarts_total === 1 ? '' : 's'}` : '');
    const problem = latestProblem(agent, clock);
    setText(this.reason, problem ?? (agent.status === 'running' || agent.status === 'stopped' ? '' : (agent.status_reason ?? '')));
    this.reason.title = problem ?? agent.status_reason ?? '';
    const figures = resourceText(agent, this.resource, clock);
    setText(this.cpu, figures.cpu);
    setText(this.memory, figures.memory);
    if (this.cpu.title !== figures.title) {
      this.cpu.title = figures.title;
      this.memory.title = figures.title;
    }
  }
}
