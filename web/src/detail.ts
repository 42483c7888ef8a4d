// One agent in full: what it is doing, its controls, the last error, the log lines its runner
// captured, health over time and the history that explains every status it had.
import { PauseLinks } from './alerts/pause-links.ts';
import type { SupabaseClient } from '@supabase/supabase-js';
import type { CommandAction } from '../../shared/status.ts';
import { fetchEvents, fetchLastLogTail, type AgentRow, type CommandRow, type EventRow } from './api.ts';
import { healthChart } from './chart.ts';
import { h, replace, setText } from './dom.ts';
import { commandNote, type RowHandlers } from './row.ts';
import { blockedCommands } from './controls.ts';
import { paintChip } from './status-view.ts';
import { formatAgo, formatDuration, formatTimestamp, type DbClock } from './time.ts';

const HISTORY_LIMIT = 300;

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
  private readonly history: HTMLDivElement;
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
  private readonly pauseLinks = new PauseLinks();

  constructor(
    private readonly client: SupabaseClient,
    handlers: RowHandlers,
  ) {
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
    this.history = h('div', { class: 'history' });
    this.problem = h('p', { class: 'notice notice-error', role: 'alert', hidden: true });
    this.el = h(
      'section',
      { class: 'detail', 'aria-labelledby': 'detail-title', hidden: true },
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
      h('h3', null, 'Last error'),
      this.error,
      h('h3', null, 'Last log lines'),
      this.logs,
      h('h3', null, 'Health over time'),
      this.chart,
      h('h3', null, 'History'),
      this.history,
    );
  }

  get openName(): string | undefined {
    return this.name;
  }

  open(name: string): void {
    this.generation++;
    this.name = name;
    this.agent = undefined;
    this.events = [];
    this.logTail = null;
    this.loading = undefined;
    this.factsKey = '';
    setText(this.title, name);
    replace(this.facts);
    replace(this.error);
    replace(this.logs);
    replace(this.chart);
    replace(this.history, h('p', { class: 'muted' }, 'Loading history…'));
    this.el.hidden = false;
    this.title.focus();
  }

  close(): void {
    this.generation++;
    this.name = undefined;
    this.el.hidden = true;
  }

  /** Shows the agent as of this poll and fetches the history it does not have yet. */
  update(agents: AgentRow[], commands: CommandRow[], clock: DbClock): void {
    if (this.name === undefined) return;
    const agent = agents.find((a) => a.agent_name === this.name);
    if (!agent) {
      this.agent = undefined;
      this.showProblem(`No agent named ${this.name} is visible to you: it was deleted, renamed, or the link is wrong.`);
      return;
    }
    if (this.agent?.id !== undefined && this.agent.id !== agent.id) this.open(agent.agent_name);
    this.agent = agent;
    this.pauseLinks.show(agent.agent_name, agent.host);
    const command = commands.find((c) => c.agent_id === agent.id);
    this.paintAgent(agent, command, clock);
    this.loading ??= this.loadEvents(agent.id, clock).finally(() => {
      this.loading = undefined;
    });
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
      this.buttons[action].title = blocked[action];
    }
    const note = commandNote(command, agent);
    setText(this.commandText, note.text || (agent.runner_id === null ? blocked.start : ''));
    this.commandText.classList.toggle('failed', note.failed);

    // Rebuilt only when something other than an age changed, so a reader's text selection in the
    // error survives the polls; the ages tick in place.
    const key = JSON.stringify([
      agent.status,
      agent.status_source,
      agent.status_reason,
      agent.status_changed_at,
      agent.health,
      agent.host,
      agent.runner_id,
      agent.runner_online,
      agent.pid,
      agent.heartbeat_timeout_s,
      agent.last_activity,
      agent.stopped_at,
      agent.exit_code,
      agent.exit_signal,
      agent.last_error,
    ]);
    if (key !== this.factsKey) {
      this.factsKey = key;
      const fact = (term: string, ...value: (string | HTMLElement)[]) => [h('dt', null, term), h('dd', null, ...value)];
      replace(
        this.facts,
        ...fact('Status', `${agent.status} (set by ${agent.status_source} `, this.ages.status, ')'),
        ...(agent.status_reason ? fact('Reason', agent.status_reason) : []),
        ...fact('Health', `${agent.health} / 100`),
        ...fact('Host', agent.host ?? '–'),
        ...fact('Runner', agent.runner_id === null ? 'none: no runner manages this agent' : agent.runner_online ? 'online' : 'offline'),
        ...fact('Process', agent.pid === null ? 'no process recorded' : `pid ${agent.pid}`),
        ...fact('Last heartbeat', this.ages.heartbeat),
        ...fact('Heartbeat timeout', `${agent.heartbeat_timeout_s} s`),
        ...fact('Uptime', this.ages.uptime),
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
    this.clock = clock;
    this.tick();
  }

  /** Refreshes the ages from the last poll's clock; called every second. */
  tick(): void {
    const agent = this.agent;
    const clock = this.clock;
    if (!agent || !clock || this.el.hidden) return;
    setText(this.ages.status, formatAgo(clock.since(agent.status_changed_at)));
    setText(this.ages.heartbeat, formatAgo(clock.since(agent.last_heartbeat)));
    setText(this.ages.uptime, agent.uptime_s === null ? '–' : formatDuration(clock.since(agent.started_at)));
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
    replace(
      this.history,
      this.events.length
        ? h(
            'table',
            null,
            h(
              'thead',
              null,
              h('tr', null, ...['When', 'Event', 'Status', 'Who', 'Message'].map((label) => h('th', { scope: 'col' }, label))),
            ),
            h(
              'tbody',
              null,
              ...this.events.map((event) =>
                h(
                  'tr',
                  { 'data-kind': event.kind },
                  h('td', { class: 'when' }, formatTimestamp(event.at)),
                  h('td', null, event.kind.replaceAll('_', ' ')),
                  h(
                    'td',
                    null,
                    event.to_status && event.from_status !== event.to_status
                      ? `${event.from_status ?? '–'} → ${event.to_status}`
                      : (event.to_status ?? ''),
                  ),
                  h('td', null, event.actor ?? event.source),
                  h('td', { class: 'message' }, describeEvent(event)),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No history yet.'),
    );
  }
}

function describeEvent(event: EventRow): string {
  const parts = [event.message ?? ''];
  if (event.details.exit_code !== undefined) parts.push(`exit code ${event.details.exit_code}`);
  if (event.details.exit_signal) parts.push(`signal ${event.details.exit_signal}`);
  if (event.health !== null) parts.push(`health ${event.health}`);
  return parts.filter(Boolean).join(' · ');
}
