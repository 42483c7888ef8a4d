// One agent in full: what it is doing, its controls, its availability, CPU and memory, the last
// error, its logs on demand and the lines its runner captured at the last failure, health over time
// and the history that explains every status it had.
import { PauseLinks } from './alerts/pause-links.ts';
import type { PausedAlerts } from './alerts/pauses.ts';
import type { SupabaseClient } from '@supabase/supabase-js';
import { columnsKey, HEALTH_NOT_REPORTED_WHY, reportedHealth } from '../../shared/rows.ts';
import type { CommandAction } from '../../shared/status.ts';
import {
  fetchAvailability,
  fetchEvents,
  fetchLastLogTail,
  fetchResourceSamples,
  type AgentRow,
  type CommandRow,
  type EventRow,
  type HistoryFilter,
} from './api.ts';
import { availabilityView } from './availability.ts';
import { healthChart } from './chart.ts';
import { h, replace, setText } from './dom.ts';
import { HistoryView } from './history-view.ts';
import { LogsView } from './logs-view.ts';
import { TimeoutsForm } from './timeouts.ts';
import { resourceCharts } from './resource-chart.ts';
import { commandNote, lifeText, type RowHandlers } from './row.ts';
import { blockedCommands, deliveryNote } from './controls.ts';
import { paintChip } from './status-view.ts';
import { formatAgo, formatTimestamp, type DbClock } from './time.ts';

// The health chart's events: the newest 300 (the history itself is paged by HistoryView).
const HISTORY_LIMIT = 300;
// Availability and the resource charts change slowly: read again this often, or at a status change.
const SLOW_READ_MS = 60_000;
// The history's newest page is read again at most this often while the agent changes.
const HISTORY_REFRESH_MS = 3000;
// What paintFacts() reads of an agent, and its type: the facts are rebuilt when one of these changes.
const FACTS = [
  'agent_name',
  'status',
  'status_source',
  'status_reason',
  'health',
  'host',
  'runner_id',
  'runner_status',
  'pid',
  'heartbeat_timeout_s',
  'heartbeat_timeout_source',
  'activity_timeout_s',
  'restarts_total',
  'restarts_10m',
  'crash_looping',
  'last_warning',
  'last_warning_at',
  'last_error_at',
  'last_activity',
  'stopped_at',
  'exit_code',
  'exit_signal',
  'last_error',
] as const satisfies readonly (keyof AgentRow)[];
type FactsAgent = Pick<AgentRow, (typeof FACTS)[number]>;

export class AgentDetail {
  readonly el: HTMLElement;
  private readonly title: HTMLHeadingElement;
  private readonly chip: HTMLSpanElement;
  private readonly facts: HTMLDListElement;
  private readonly commandText: HTMLParagraphElement;
  private readonly buttons: Record<CommandAction, HTMLButtonElement>;
  private readonly error: HTMLDivElement;
  private readonly logs: HTMLDivElement;
  private readonly chart: HTMLDivElement;
  private readonly availability: HTMLDivElement;
  private readonly resources: HTMLDivElement;
  readonly history: HistoryView;
  readonly logsView: LogsView;
  private readonly timeouts: TimeoutsForm;
  private slowReadAt = -Infinity;
  private slowKey = '';
  private historyKey = '';
  private historyAt = -Infinity;
  private readonly problem: HTMLParagraphElement;
  private name: string | undefined;
  private agent: AgentRow | undefined;
  private events: EventRow[] = [];
  private logTail: EventRow | null = null;
  private generation = 0;
  private loading: Promise<void> | undefined;
  private clock: DbClock | undefined;
  private factsKey = '';
  private readonly ages = { status: h('span'), heartbeat: h('span'), uptime: h('span'), activity: h('span') };
  private readonly pauseLinks: PauseLinks;

  constructor(
    private readonly client: SupabaseClient,
    handlers: RowHandlers,
    paused?: PausedAlerts,
  ) {
    this.pauseLinks = new PauseLinks(paused);
    const act = (action: CommandAction) => () => this.agent && handlers.command(this.agent, action);
    this.buttons = {
      start: h('button', { type: 'button', class: 'btn', on: { click: act('start') } }, 'Start'),
      stop: h('button', { type: 'button', class: 'btn', on: { click: act('stop') } }, 'Stop'),
      restart: h('button', { type: 'button', class: 'btn', on: { click: act('restart') } }, 'Restart'),
    };
    this.title = h('h2', { id: 'detail-title', tabindex: '-1' });
    this.chip = h('span', { class: 'chip' });
    this.facts = h('dl', { class: 'facts' });
    this.commandText = h('p', { class: 'command', role: 'status' });
    this.error = h('div');
    this.logs = h('div');
    this.chart = h('div', { class: 'chart' });
    this.availability = h('div', { class: 'availability-view' });
    this.resources = h('div', { class: 'resources' });
    this.problem = h('p', { class: 'notice notice-error', role: 'alert', hidden: true });
    this.history = new HistoryView(client, (message) => this.showProblem(message));
    this.logsView = new LogsView(client);
    this.timeouts = new TimeoutsForm(client, () => void this.history.refresh());
    this.el = h(
      'section',
      // 'unknown' hides every part about the agent (styles.css) until this page's agent is found
      { class: 'detail unknown', 'aria-labelledby': 'detail-title', hidden: true },
      h('a', { href: '#/', class: 'back' }, '← All agents'),
      h('header', { class: 'detail-head' }, this.title, this.chip),
      this.problem,
      h(
        'div',
        { class: 'detail-controls' },
        this.buttons.start,
        this.buttons.stop,
        this.buttons.restart,
        h(
          'button',
          { type: 'button', class: 'btn btn-danger', on: { click: () => this.agent && handlers.forceStop(this.agent) } },
          'Force stop…',
        ),
        this.pauseLinks.el,
        this.commandText,
      ),
      this.facts,
      h('h3', null, 'Timeouts'),
      this.timeouts.el,
      h('h3', null, 'Availability'),
      this.availability,
      h('h3', null, 'CPU and memory'),
      this.resources,
      h('h3', null, 'Last error'),
      this.error,
      h('h3', null, 'Logs'),
      this.logsView.el,
      h('h3', null, 'Log lines at the last failure'),
      this.logs,
      h('h3', null, 'Health over time'),
      this.chart,
      h('h3', null, 'History'),
      this.history.el,
    );
  }

  get openName(): string | undefined {
    return this.name;
  }

  open(name: string, historyFilter: HistoryFilter | '' = ''): void {
    this.generation++;
    this.name = name;
    this.forgetAgent();
    this.events = [];
    this.logTail = null;
    this.loading = undefined;
    this.factsKey = '';
    setText(this.title, name);
    replace(this.facts);
    replace(this.error);
    replace(this.logs);
    replace(this.chart);
    replace(this.availability, h('p', { class: 'muted' }, 'Loading…'));
    replace(this.resources);
    this.slowReadAt = -Infinity;
    this.slowKey = '';
    this.historyKey = '';
    this.history.open(name, historyFilter);
    this.historyAt = performance.now();
    this.logsView.open(name);
    this.el.hidden = false;
    this.title.focus();
  }

  /** Drops the agent shown so far, so a page for an unknown name neither shows nor saves to it. */
  private forgetAgent(): void {
    this.agent = undefined;
    this.el.classList.add('unknown');
    this.timeouts.forget();
    this.factsKey = '';
  }

  close(): void {
    this.generation++;
    this.logsView.close();
    this.name = undefined;
    this.el.hidden = true;
  }

  /** Shows the agent as of this poll and fetches the history it does not have yet. */
  update(agents: AgentRow[], commands: CommandRow[], clock: DbClock): void {
    if (this.name === undefined) return;
    const agent = agents.find((a) => a.agent_name === this.name);
    if (!agent) {
      this.forgetAgent();
      this.showProblem(`No agent named ${this.name} is visible to you: it was deleted, renamed, or the link is wrong.`);
      return;
    }
    if (this.agent?.id !== undefined && this.agent.id !== agent.id) this.open(agent.agent_name);
    if (!this.agent) this.showProblem(null);
    this.agent = agent;
    this.el.classList.remove('unknown');
    this.pauseLinks.show(agent.agent_name, agent.host);
    const command = commands.find((c) => c.agent_id === agent.id);
    this.paintAgent(agent, command, clock);
    this.loading ??= this.loadEvents(agent.id, clock).finally(() => {
      this.loading = undefined;
    });
    const historyKey = `${agent.status}|${agent.status_changed_at}|${agent.updated_at}|${command?.id}|${command?.status}`;
    // the newest page again when the agent changed, at most every few seconds (a later poll catches up)
    if (!this.historyKey) this.historyKey = historyKey;
    else if (historyKey !== this.historyKey && performance.now() - this.historyAt > HISTORY_REFRESH_MS) {
      this.historyKey = historyKey;
      this.historyAt = performance.now();
      void this.history.refresh();
    }
    const slowKey = `${agent.status}|${agent.status_changed_at}`;
    if (slowKey !== this.slowKey || performance.now() - this.slowReadAt > SLOW_READ_MS) {
      this.slowKey = slowKey;
      this.slowReadAt = performance.now();
      void this.loadSlow(agent);
    }
  }

  /** Availability and the CPU and memory charts. */
  private async loadSlow(agent: AgentRow) {
    const generation = this.generation;
    try {
      const [availability, samples] = await Promise.all([
        fetchAvailability(this.client, agent.agent_name),
        fetchResourceSamples(this.client, agent.id),
      ]);
      if (generation !== this.generation) return;
      replace(this.availability, availabilityView(availability));
      const charts = resourceCharts(samples);
      replace(
        this.resources,
        ...(charts ?? [h('p', { class: 'muted' }, 'No figures yet: the runner on its host sends CPU and memory about once a minute.')]),
      );
    } catch (error) {
      if (generation === this.generation) this.showProblem(`${(error as Error).message}. Retrying with the next update.`);
    }
  }

  private showProblem(message: string | null) {
    this.problem.hidden = message === null;
    if (message !== null) this.problem.textContent = message;
  }

  private async loadEvents(agentId: number, clock: DbClock) {
    const generation = this.generation;
    try {
      const first = this.events.length === 0;
      const [fresh, tail] = await Promise.all([
        fetchEvents(this.client, agentId, this.events[0]?.id ?? 0, HISTORY_LIMIT),
        first ? fetchLastLogTail(this.client, agentId) : Promise.resolve(null),
      ]);
      if (generation !== this.generation) return;
      this.showProblem(null);
      if (!first && !fresh.length) return;
      this.events = [...fresh, ...this.events].slice(0, HISTORY_LIMIT);
      this.logTail = fresh.find((event) => Array.isArray(event.details?.log_tail)) ?? tail ?? this.logTail;
      this.paintEvents(clock);
    } catch (error) {
      if (generation === this.generation) this.showProblem(`${(error as Error).message}. Retrying with the next update.`);
    }
  }

  private paintAgent(agent: AgentRow, command: CommandRow | undefined, clock: DbClock) {
    paintChip(this.chip, agent.status);
    const blocked = blockedCommands(agent, command);
    for (const action of ['start', 'stop', 'restart'] as const) {
      this.buttons[action].disabled = blocked[action] !== '';
      this.buttons[action].title = blocked[action] || deliveryNote(agent, action);
    }
    const note = commandNote(command, agent);
    const unmanaged = blocked.stop === '' ? deliveryNote(agent, 'stop') : blocked.start;
    setText(this.commandText, note.text || (agent.runner_id === null ? unmanaged : ''));
    this.commandText.classList.toggle('failed', note.failed);

    // Rebuilt only when something other than an age changed, so a reader's text selection in the
    // error survives the polls; the ages tick in place.
    // whether its health was reported, not when: a heartbeat with the same health rebuilds nothing
    const health = reportedHealth(agent);
    const key = `${columnsKey(agent, FACTS)}${health === null}`;
    if (key !== this.factsKey) {
      this.factsKey = key;
      this.paintFacts(agent, health);
    }
    // every poll: after a save the form shows the stored values again, even when they did not change
    this.timeouts.show(agent);
    this.clock = clock;
    this.tick();
  }

  /** The facts list and the last error: everything FACTS names (the timeouts form is shown every poll). */
  private paintFacts(agent: FactsAgent, health: number | null) {
    const fact = (term: string, ...value: (string | HTMLElement)[]) => [h('dt', null, term), h('dd', null, ...value)];
    replace(
      this.facts,
      ...fact('Status', `${agent.status} (set by ${agent.status_source} `, this.ages.status, ')'),
      ...(agent.status_reason ? fact('Reason', agent.status_reason) : []),
      ...fact('Health', health === null ? HEALTH_NOT_REPORTED_WHY : `${health} / 100`),
      ...fact('Host', agent.host ?? '–'),
      ...fact('Runner', agent.runner_id === null ? 'none: no runner manages this agent' : (agent.runner_status ?? 'unknown')),
      ...fact('Process', agent.pid === null ? 'no process recorded' : `pid ${agent.pid}`),
      ...fact('Last heartbeat', this.ages.heartbeat),
      ...fact('Uptime', this.ages.uptime),
      ...fact(
        'Restarts',
        `${agent.restarts_total} after crashes, ${agent.restarts_10m} in the last 10 minutes${agent.crash_looping ? ' (crash loop)' : ''}`,
      ),
      ...(agent.last_warning_at ? fact('Last warning', `${formatTimestamp(agent.last_warning_at)}: ${agent.last_warning ?? ''}`) : []),
      ...(agent.last_error_at ? fact('Last error at', formatTimestamp(agent.last_error_at)) : []),
      ...fact('Last activity', ...(agent.last_activity ? [`${agent.last_activity} (`, this.ages.activity, ')'] : ['–'])),
      ...(agent.stopped_at ? fact('Stopped', formatTimestamp(agent.stopped_at)) : []),
      ...(agent.exit_code !== null || agent.exit_signal
        ? fact('Exit', agent.exit_signal ? `signal ${agent.exit_signal}` : `code ${agent.exit_code}`)
        : []),
    );
    replace(
      this.error,
      agent.last_error ? h('pre', { class: 'error-text' }, agent.last_error) : h('p', { class: 'muted' }, 'No error reported.'),
    );
  }

  /** Refreshes the ages from the last poll's clock; called every second. */
  tick(): void {
    const agent = this.agent;
    const clock = this.clock;
    if (!agent || !clock || this.el.hidden) return;
    setText(this.ages.status, formatAgo(clock.since(agent.status_changed_at)));
    setText(this.ages.heartbeat, formatAgo(clock.since(agent.last_heartbeat)));
    setText(this.ages.uptime, lifeText(agent, clock));
    setText(this.ages.activity, formatAgo(clock.since(agent.last_activity_at)));
  }

  private paintEvents(clock: DbClock) {
    const lines = this.logTail?.details.log_tail;
    replace(
      this.logs,
      lines?.length
        ? h(
            'figure',
            null,
            h('pre', { class: 'log', tabindex: '0' }, lines.join('\n')),
            h(
              'figcaption',
              { class: 'muted' },
              `Captured at ${formatTimestamp(this.logTail!.at)}, with the ${this.logTail!.kind.replaceAll('_', ' ')} event.`,
            ),
          )
        : h('p', { class: 'muted' }, 'The runner has not captured any log lines for this agent.'),
    );
    replace(this.chart, healthChart(this.events, clock.now()) ?? h('p', { class: 'muted' }, 'No health recorded yet.'));
  }
}
