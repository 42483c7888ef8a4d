// The agents table: a keyed list of row views, sorted and filtered. A poll updates rows in place and
// moves a node only when the order really changed, so 2,000 agents never re-render as a whole.
import type { AgentStatus } from '../../shared/status.ts';
import type { AgentRow, CommandRow, ResourceRow } from './api.ts';
import { h, replace } from './dom.ts';
import { AgentRowView, processRuns, type RowHandlers } from './row.ts';
import { SEVERITY } from './status-view.ts';
import type { DbClock } from './time.ts';

export type SortKey = 'status' | 'name' | 'host' | 'health' | 'activity' | 'heartbeat' | 'uptime' | 'cpu' | 'memory';
export const SORT_KEYS: readonly SortKey[] = ['status', 'name', 'host', 'health', 'activity', 'heartbeat', 'uptime', 'cpu', 'memory'];

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
  { key: 'cpu', label: 'CPU', className: 'c-cpu' },
  { key: 'memory', label: 'Memory', className: 'c-memory' },
  { key: null, label: 'Actions', className: 'c-actions' },
];

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

// Larger first: for times, the most recent first.
function largerFirst(a: number, b: number): number {
  return b < a ? -1 : b > a ? 1 : 0;
}

const time = (timestamp: string | null, missing: number) => (timestamp === null ? missing : Date.parse(timestamp));

function compare(key: SortKey, a: AgentRow, b: AgentRow, nameRank: Map<number, number>, resources: Map<number, ResourceRow>): number {
  // Busiest first; agents without figures last.
  const figure = (agent: AgentRow, field: 'cpu_percent' | 'memory_bytes') =>
    processRuns(agent) ? (resources.get(agent.id)?.[field] ?? -1) : -1;
  switch (key) {
    case 'status':
      return SEVERITY[a.status] - SEVERITY[b.status];
    case 'name':
      return nameRank.get(a.id)! - nameRank.get(b.id)!;
    case 'host':
      return collator.compare(a.host ?? '', b.host ?? '');
    case 'health':
      return a.health - b.health;
    case 'activity':
      return collator.compare(a.last_activity ?? '', b.last_activity ?? '');
    // Ascending: the freshest heartbeat first, never-seen agents last.
    case 'heartbeat':
      return largerFirst(time(a.last_heartbeat, -Infinity), time(b.last_heartbeat, -Infinity));
    // Ascending: agents that are not up first, then the shortest uptime (the latest start).
    case 'uptime':
      return largerFirst(
        processRuns(a) ? time(a.started_at, Infinity) : Infinity,
        processRuns(b) ? time(b.started_at, Infinity) : Infinity,
      );
    case 'cpu':
      return largerFirst(figure(a, 'cpu_percent'), figure(b, 'cpu_percent'));
    case 'memory':
      return largerFirst(figure(a, 'memory_bytes'), figure(b, 'memory_bytes'));
  }
}

// Rows rendered beyond the edges of the viewport, so a fast scroll or Tab lands on rows that exist.
const OVERSCAN = 12;

export class AgentTable {
  readonly el: HTMLDivElement;
  private readonly header: HTMLDivElement;
  private readonly body: HTMLDivElement;
  private readonly empty: HTMLParagraphElement;
  // Only the rows in and near the viewport are in the DOM (a window over the sorted, filtered list);
  // views are created when an agent first scrolls into that window and then kept, keyed by id.
  // With all 2,000 rows in the DOM, creating them took ~300 ms and laying them out ~200 ms more on
  // this machine, and every moved row relaid the whole list.
  private readonly views = new Map<number, AgentRowView>();
  private readonly attached = new Set<AgentRowView>();
  // Names in collation order, recomputed only when the set of names changes: collating 2,000 names
  // inside every sort cost ~20 ms per poll.
  private nameRank = new Map<number, number>();
  private namesKey = '';
  private agents: AgentRow[] = [];
  private shown: AgentRow[] = [];
  private latest = new Map<number, CommandRow>();
  private resources = new Map<number, ResourceRow>();
  private clock: DbClock | undefined;
  private sortKey: SortKey = 'status';
  private descending = false;
  private filter: Filter = { status: '', host: '', search: '' };
  private rowHeight = 56;
  private frame = 0;
  private readonly onViewport = () => {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.paintWindow();
    });
  };
  /** Called with the number of rows shown after each render. */
  onRender: (shown: number, total: number) => void = () => {};
  /** Called when the operator sorts by a column. */
  onSort: (key: SortKey, descending: boolean) => void = () => {};

  constructor(private readonly handlers: RowHandlers) {
    this.header = h('div', { class: 'row head', role: 'row', 'aria-rowindex': '1' });
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
    window.addEventListener('scroll', this.onViewport, { passive: true });
    window.addEventListener('resize', this.onViewport);
  }

  destroy(): void {
    window.removeEventListener('scroll', this.onViewport);
    window.removeEventListener('resize', this.onViewport);
    cancelAnimationFrame(this.frame);
  }

  /** Applies a poll's agents and commands (newest first, as fetched). */
  apply(agents: AgentRow[], commands: CommandRow[], resources: Map<number, ResourceRow>, clock: DbClock): void {
    this.agents = agents;
    this.clock = clock;
    this.resources = resources;
    this.latest = new Map();
    for (const command of commands) if (!this.latest.has(command.agent_id)) this.latest.set(command.agent_id, command);
    const byId = new Map(agents.map((agent) => [agent.id, agent]));
    for (const [id, view] of this.views) {
      const agent = byId.get(id);
      if (agent) {
        view.update(agent, this.latest.get(id), resources.get(id));
      } else {
        view.el.remove();
        this.attached.delete(view);
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
    for (const view of this.attached) view.tick(clock);
  }

  setFilter(patch: Partial<Filter>): void {
    this.filter = { ...this.filter, ...patch };
    this.render();
  }

  sortBy(key: SortKey): void {
    this.setSort(key, this.sortKey === key ? !this.descending : false);
    this.onSort(this.sortKey, this.descending);
  }

  setSort(key: SortKey, descending: boolean): void {
    if (key === this.sortKey && descending === this.descending) return;
    this.sortKey = key;
    this.descending = descending;
    this.paintHeader();
    this.render();
  }

  get filterState(): Filter {
    return this.filter;
  }

  get sortState(): { sort: SortKey; descending: boolean } {
    return { sort: this.sortKey, descending: this.descending };
  }

  /** Refreshes the ages of the rows in the DOM; called every second. */
  tick(): void {
    if (!this.clock) return;
    for (const view of this.attached) view.tick(this.clock);
  }

  /** Re-renders the window, e.g. after the table became visible again. */
  refresh(): void {
    this.paintWindow();
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
    const resources = this.resources;
    return shown.sort((a, b) => direction * compare(this.sortKey, a, b, rank, resources) || rank.get(a.id)! - rank.get(b.id)!);
  }

  private render() {
    this.shown = this.visible();
    this.el.setAttribute('aria-rowcount', String(this.shown.length + 1));
    this.empty.hidden = this.shown.length > 0;
    this.empty.textContent = this.agents.length
      ? 'No agent matches these filters.'
      : 'No agents yet. An agent appears here when a runner lists it in its config or an agent token is created for it.';
    this.paintWindow();
    this.onRender(this.shown.length, this.agents.length);
  }

  private view(agent: AgentRow): AgentRowView {
    let view = this.views.get(agent.id);
    if (!view) {
      view = new AgentRowView(agent, this.handlers);
      view.update(agent, this.latest.get(agent.id), this.resources.get(agent.id));
      this.views.set(agent.id, view);
    }
    return view;
  }

  private paintWindow() {
    const total = this.shown.length;
    if (this.el.offsetParent === null && total) return; // hidden (agent detail open): nothing to place
    const height = this.rowHeight;
    const top = this.body.getBoundingClientRect().top;
    const first = Math.max(0, Math.min(total, Math.floor(-top / height) - OVERSCAN));
    const last = Math.min(total, Math.max(first, Math.ceil((window.innerHeight - top) / height) + OVERSCAN));
    this.body.style.paddingTop = `${first * height}px`;
    this.body.style.paddingBottom = `${(total - last) * height}px`;

    // Walk the wanted rows against the current children; insertBefore only where they differ.
    const wanted = new Set<AgentRowView>();
    let cursor = this.body.firstChild;
    for (let index = first; index < last; index++) {
      const view = this.view(this.shown[index]);
      wanted.add(view);
      view.el.setAttribute('aria-rowindex', String(index + 2));
      if (view.el === cursor) cursor = cursor.nextSibling;
      else this.body.insertBefore(view.el, cursor);
      if (!this.attached.has(view)) {
        this.attached.add(view);
        if (this.clock) view.tick(this.clock);
      }
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    for (const view of this.attached) if (!wanted.has(view)) this.attached.delete(view);

    // Rows have a fixed height per layout (styles.css); measure it, and place again if it changed
    // (first render, or the window crossed the narrow-screen breakpoint).
    const rows = this.body.children;
    const measured =
      rows.length > 1
        ? (rows[1] as HTMLElement).offsetTop - (rows[0] as HTMLElement).offsetTop
        : (rows[0] as HTMLElement | undefined)?.offsetHeight;
    if (measured && Math.abs(measured - height) > 0.5) {
      this.rowHeight = measured;
      this.paintWindow();
    }
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
              ? h(
                  'button',
                  { type: 'button', class: 'sort', on: { click: () => this.sortBy(key) } },
                  label,
                  h('span', { class: 'arrow', 'aria-hidden': 'true' }),
                )
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
