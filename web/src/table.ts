// The agents table: a keyed list of row views, sorted and filtered. A poll updates rows in place and
// moves a node only when the order really changed, so 2,000 agents never re-render as a whole.
import type { AgentStatus } from '../../shared/status.ts';
import type { AgentRow, CommandRow } from './api.ts';
import { h, replace } from './dom.ts';
import { AgentRowView, type RowHandlers } from './row.ts';
import { SEVERITY } from './status-view.ts';
import type { DbClock } from './time.ts';

export type SortKey = 'status' | 'name' | 'host' | 'health' | 'activity' | 'heartbeat' | 'uptime';

export interface Filter {
  status: AgentStatus | '';
  /** '' for every host; NO_HOST for agents without one */
  host: string;
  search: string;
}

export const NO_HOST = '\u0000none';

const COLUMNS: { key: SortKey | null; label: string; className: string }[] = [
  { key: 'name', label: 'Agent', className: 'c-name' },
  { key: 'host', label: 'Host', className: 'c-host' },
  { key: 'status', label: 'Status', className: 'c-status' },
  { key: 'health', label: 'Health', className: 'c-health' },
  { key: 'activity', label: 'Last activity', className: 'c-activity' },
  { key: 'heartbeat', label: 'Last heartbeat', className: 'c-heartbeat' },
  { key: 'uptime', label: 'Uptime', className: 'c-uptime' },
  { key: null, label: 'Actions', className: 'c-actions' },
];

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

function compare(key: SortKey, a: AgentRow, b: AgentRow, nameRank: Map<number, number>): number {
  switch (key) {
    case 'status': return SEVERITY[a.status] - SEVERITY[b.status];
    case 'name': return nameRank.get(a.id)! - nameRank.get(b.id)!;
    case 'host': return collator.compare(a.host ?? '', b.host ?? '');
    case 'health': return a.health - b.health;
    case 'activity': return collator.compare(a.last_activity ?? '', b.last_activity ?? '');
    // Never-seen agents sort as the longest silence.
    case 'heartbeat': return (a.seconds_since_heartbeat ?? Infinity) - (b.seconds_since_heartbeat ?? Infinity);
    case 'uptime': return (a.uptime_s ?? -1) - (b.uptime_s ?? -1);
  }
}

export class AgentTable {
  readonly el: HTMLDivElement;
  private readonly header: HTMLDivElement;
  private readonly body: HTMLDivElement;
  private readonly empty: HTMLParagraphElement;
  private readonly views = new Map<number, AgentRowView>();
  // Rows on screen (or near it). Only they refresh their ages: with 2,000 agents, updating every
  // row's "12 s ago" each second and each poll was most of the work of a poll (~50 ms measured).
  private readonly onScreen = new Set<AgentRowView>();
  private readonly observer: IntersectionObserver;
  // Names in collation order, recomputed only when the set of names changes: collating 2,000 names
  // inside every sort cost ~20 ms per poll.
  private nameRank = new Map<number, number>();
  private namesKey = '';
  private agents: AgentRow[] = [];
  private clock: DbClock | undefined;
  private sortKey: SortKey = 'status';
  private descending = false;
  private filter: Filter = { status: '', host: '', search: '' };
  /** Called with the number of rows shown after each render. */
  onRender: (shown: number, total: number) => void = () => {};

  constructor(private readonly handlers: RowHandlers) {
    this.header = h('div', { class: 'row head', role: 'row' });
    this.body = h('div', { class: 'rows', role: 'rowgroup' });
    this.empty = h('p', { class: 'empty', hidden: true });
    this.el = h(
      'div',
      { class: 'table', role: 'table', 'aria-label': 'Agents' },
      h('div', { role: 'rowgroup', class: 'head-group' }, this.header),
      this.body,
      this.empty,
    );
    this.paintHeader();
    this.observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          const view = this.views.get(Number((entry.target as HTMLElement).dataset.id));
          if (!view) continue;
          if (entry.isIntersecting) {
            this.onScreen.add(view);
            if (this.clock) view.tick(this.clock);
          } else this.onScreen.delete(view);
        }
      },
      { rootMargin: '300px 0px' },
    );
  }

  /** Applies a poll's agents and commands (newest first, as fetched). */
  apply(agents: AgentRow[], commands: CommandRow[], clock: DbClock): void {
    this.agents = agents;
    this.clock = clock;
    const latest = new Map<number, CommandRow>();
    for (const command of commands) if (!latest.has(command.agent_id)) latest.set(command.agent_id, command);
    const seen = new Set<number>();
    for (const agent of agents) {
      seen.add(agent.id);
      let view = this.views.get(agent.id);
      if (!view) {
        view = new AgentRowView(agent, this.handlers);
        view.el.dataset.id = String(agent.id);
        this.views.set(agent.id, view);
        this.observer.observe(view.el);
      }
      view.update(agent, latest.get(agent.id));
      if (this.onScreen.has(view)) view.tick(clock);
    }
    for (const [id, view] of this.views) {
      if (!seen.has(id)) {
        this.observer.unobserve(view.el);
        this.onScreen.delete(view);
        view.el.remove();
        this.views.delete(id);
      }
    }
    const namesKey = agents.map((agent) => agent.agent_name).join('\n');
    if (namesKey !== this.namesKey) {
      this.namesKey = namesKey;
      const sorted = [...agents].sort((a, b) => collator.compare(a.agent_name, b.agent_name));
      this.nameRank = new Map(sorted.map((agent, rank) => [agent.id, rank]));
    }
    this.render();
  }

  setFilter(patch: Partial<Filter>): void {
    this.filter = { ...this.filter, ...patch };
    this.render();
  }

  getFilter(): Filter {
    return this.filter;
  }

  sortBy(key: SortKey): void {
    this.descending = this.sortKey === key ? !this.descending : false;
    this.sortKey = key;
    this.paintHeader();
    this.render();
  }

  tick(): void {
    if (!this.clock) return;
    for (const view of this.onScreen) view.tick(this.clock);
  }

  private visible(): AgentRow[] {
    const { status, host, search } = this.filter;
    const needle = search.trim().toLowerCase();
    const shown = this.agents.filter(
      (a) =>
        (!status || a.status === status) &&
        (!host || (host === NO_HOST ? a.host === null : a.host === host)) &&
        (!needle || a.agent_name.toLowerCase().includes(needle)),
    );
    const direction = this.descending ? -1 : 1;
    const rank = this.nameRank;
    return shown.sort((a, b) => direction * compare(this.sortKey, a, b, rank) || rank.get(a.id)! - rank.get(b.id)!);
  }

  private render() {
    const shown = this.visible();
    // Walk the wanted order against the current children; insertBefore only where they differ.
    let cursor = this.body.firstChild;
    for (const agent of shown) {
      const el = this.views.get(agent.id)!.el;
      if (el === cursor) cursor = cursor.nextSibling;
      else this.body.insertBefore(el, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    this.empty.hidden = shown.length > 0;
    this.empty.textContent = this.agents.length
      ? 'No agent matches these filters.'
      : 'No agents yet. An agent appears here when a runner lists it in its config or an agent token is created for it.';
    this.onRender(shown.length, this.agents.length);
  }

  // Updated in place, so the sort button keeps keyboard focus after it is pressed.
  private paintHeader() {
    if (!this.header.firstChild) {
      replace(
        this.header,
        ...COLUMNS.map(({ key, label, className }) =>
          h(
            'div',
            { class: `cell ${className}`, role: 'columnheader', 'data-key': key ?? undefined },
            key
              ? h('button', { type: 'button', class: 'sort', on: { click: () => this.sortBy(key) } },
                  label, h('span', { class: 'arrow', 'aria-hidden': 'true' }))
              : h('span', { class: 'sr-only' }, label),
          ),
        ),
      );
    }
    for (const cell of this.header.querySelectorAll<HTMLElement>('[data-key]')) {
      const sorted = cell.dataset.key === this.sortKey;
      cell.setAttribute('aria-sort', sorted ? (this.descending ? 'descending' : 'ascending') : 'none');
      cell.querySelector('.arrow')!.textContent = sorted ? (this.descending ? ' ↓' : ' ↑') : '';
    }
  }
}
