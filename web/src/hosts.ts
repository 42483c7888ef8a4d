// The hosts view (#/hosts): each runner with its liveness (online, silent for N s, offline, stopped
// after its goodbye: decided by the database, silent once two of the runner's heartbeat intervals pass without a word), version,
// pid and uptime, its agents counted by status, and "Start all on this host".
import { AGENT_STATUSES, type AgentStatus } from '../../shared/status.ts';
import type { AgentPage, RunnerRow } from './api.ts';
import { h, replace, setText } from './dom.ts';
import { statusChip } from './status-view.ts';
import { formatAgo, formatDuration, type DbClock } from './time.ts';

export type HostLiveness = RunnerRow['status'];

/** The runner's liveness as the database decided it (runner_status_live), with its age ticking locally. */
export function hostLiveness(runner: RunnerRow, clock: DbClock): { status: HostLiveness; text: string } {
  const silentFor = clock.since(runner.last_seen_at) ?? 0;
  if (runner.status === 'stopped')
    return { status: 'stopped', text: `stopped ${formatAgo(clock.since(runner.stopped_at ?? runner.last_seen_at))}` };
  if (runner.status === 'offline') return { status: 'offline', text: `offline, last seen ${formatAgo(silentFor)}` };
  if (runner.status === 'silent') return { status: 'silent', text: `silent for ${formatDuration(silentFor)}` };
  return { status: 'online', text: 'online' };
}

export class HostsView {
  readonly el: HTMLElement;
  private readonly body: HTMLTableSectionElement;
  private readonly empty: HTMLParagraphElement;
  private runners: RunnerRow[] = [];
  private tallies: AgentPage['runners'] = {};
  private clock: DbClock | undefined;
  private key = '';
  private readonly liveness = new Map<string, { cell: HTMLElement; uptime: HTMLElement }>();

  constructor(private readonly startAll: (host: string, managed: number) => void) {
    this.body = h('tbody');
    this.empty = h(
      'p',
      { class: 'muted', hidden: true },
      "No runner has registered yet: Start and Stop need a runner on the agents' host.",
    );
    this.el = h(
      'section',
      { class: 'hosts', 'aria-labelledby': 'hosts-title', hidden: true },
      h('h2', { id: 'hosts-title' }, 'Hosts'),
      h(
        'p',
        { class: 'muted' },
        'One runner per host supervises its agents. A silent runner may be hung or its host down: its agents may be dead or alive.',
      ),
      h(
        'table',
        null,
        h(
          'thead',
          null,
          h('tr', null, ...['Host', 'Runner', 'Version', 'PID', 'Uptime', 'Agents', ''].map((label) => h('th', { scope: 'col' }, label))),
        ),
        this.body,
      ),
      this.empty,
    );
  }

  /** The runners, and each one's agents per status (counted by the database). */
  update(runners: RunnerRow[], tallies: AgentPage['runners'], clock: DbClock): void {
    this.runners = runners;
    this.tallies = tallies;
    this.clock = clock;
    if (this.el.hidden) return;
    const counts = this.counts();
    const key = JSON.stringify([
      runners.map((r) => [r.id, r.host, r.status, r.version, r.pid, r.started_at]),
      [...counts].map(([id, tally]) => [id, [...tally]]),
    ]);
    if (key !== this.key) {
      this.key = key;
      this.paint(counts);
    }
    this.tick();
  }

  show(): void {
    this.el.hidden = false;
    this.key = '';
    if (this.clock) this.update(this.runners, this.tallies, this.clock);
  }

  hide(): void {
    this.el.hidden = true;
  }

  private counts(): Map<string, Map<AgentStatus, number>> {
    return new Map(Object.entries(this.tallies).map(([id, tally]) => [id, new Map(Object.entries(tally) as [AgentStatus, number][])]));
  }

  private paint(counts: Map<string, Map<AgentStatus, number>>) {
    this.liveness.clear();
    this.empty.hidden = this.runners.length > 0;
    replace(
      this.body,
      ...this.runners.map((runner) => {
        const tally = counts.get(runner.id) ?? new Map<AgentStatus, number>();
        const managed = [...tally.values()].reduce((a, b) => a + b, 0);
        const cell = h('span', { class: 'host-status' });
        const uptime = h('td', { class: 'uptime' });
        this.liveness.set(runner.id, { cell, uptime });
        return h(
          'tr',
          { 'data-host': runner.host },
          h('th', { scope: 'row' }, h('a', { href: `#/?host=${encodeURIComponent(runner.host)}` }, runner.host)),
          h('td', null, cell),
          h('td', null, runner.version ?? '–'),
          h('td', null, runner.pid === null ? '–' : String(runner.pid)),
          uptime,
          h(
            'td',
            null,
            h(
              'span',
              { class: 'counts' },
              ...AGENT_STATUSES.filter((status) => tally.get(status)).map((status) =>
                h('span', { 'data-status': status }, statusChip(status), ` ${tally.get(status)}`),
              ),
              managed ? null : h('span', { class: 'muted' }, 'none'),
            ),
          ),
          h(
            'td',
            null,
            h(
              'button',
              {
                type: 'button',
                class: 'btn',
                disabled: managed === 0,
                'aria-label': `Start all on ${runner.host}`,
                on: { click: () => this.startAll(runner.host, managed) },
              },
              'Start all on this host',
            ),
          ),
        );
      }),
    );
  }

  /** Ages: how long silent, how long up. */
  tick(): void {
    const clock = this.clock;
    if (!clock || this.el.hidden) return;
    for (const runner of this.runners) {
      const cells = this.liveness.get(runner.id);
      if (!cells) continue;
      const { status, text } = hostLiveness(runner, clock);
      cells.cell.dataset.status = status;
      setText(cells.cell, text);
      setText(cells.uptime, status === 'offline' || status === 'stopped' ? '–' : formatDuration(clock.since(runner.started_at)));
    }
  }
}
