// The agents table: a window over the matching agents, which the database filters, sorts and counts
// (public.dashboard_agent_page). The table is sized for all of them and asks for the rows around the
// viewport as it scrolls (onWindow); a poll updates those rows in place and moves a node only when
// the order really changed, so a fleet of 100,000 is never in the browser as a whole.
import type { AgentPage, AgentQuery, AgentRow, CommandRow, ResourceRow } from './api.ts';
import { h, replace } from './dom.ts';
import { AgentRowView, type RowHandlers } from './row.ts';
import type { DbClock } from './time.ts';
import type { AgentStatus } from '../../shared/status.ts';

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

// Rows rendered beyond the edges of the viewport, so a fast scroll or Tab lands on rows that exist.
const OVERSCAN = 12;

// Rows read beyond the window rendered, so a short scroll needs no new read.
const READ_AHEAD = 40;

/** The query of the database for these filters and this sort. */
export function agentQuery(filter: Filter, sort: SortKey, descending: boolean): AgentQuery {
  return { status: filter.status, host: filter.host === NO_HOST ? null : filter.host, search: filter.search, sort, descending };
}

const queryKey = (query: AgentQuery) => JSON.stringify(query);

export class AgentTable {
  readonly el: HTMLDivElement;
  private readonly header: HTMLDivElement;
  private readonly body: HTMLDivElement;
  private readonly empty: HTMLParagraphElement;
  // Only the rows in and near the viewport are in the DOM; views are created when an agent first
  // scrolls into that window, kept while the database returns it, and keyed by id.
  private readonly views = new Map<number, AgentRowView>();
  private readonly attached = new Set<AgentRowView>();
  /** the rows read for the current query: `rows[i]` is the agent at position `offset + i` */
  private rows: AgentRow[] = [];
  private offset = 0;
  private rowsKey = '';
  /** how many agents match the filters, and how many there are */
  private matching = 0;
  private total = 0;
  private loaded = false;
  /** the window last asked for (onWindow) */
  private asked = { key: '', offset: -1, limit: 0 };
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
  /** Called with the rows to read: the query, and the positions around the viewport. */
  onWindow: (query: AgentQuery, offset: number, limit: number) => void = () => {};

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

  /** The database's query for the current filters and sort. */
  get query(): AgentQuery {
    return agentQuery(this.filter, this.sortKey, this.descending);
  }

  /**
   * Applies a poll: the page the database answered for `query` (rows of another query, asked for
   * before the filters changed, are not shown), the commands (newest first) and figures of its agents.
   */
  apply(query: AgentQuery, page: AgentPage, commands: CommandRow[], resources: Map<number, ResourceRow>, clock: DbClock): void {
    this.clock = clock;
    this.resources = resources;
    this.latest = new Map();
    for (const command of commands) if (!this.latest.has(command.agent_id)) this.latest.set(command.agent_id, command);
    this.total = page.total;
    const key = queryKey(query);
    if (key === queryKey(this.query)) {
      this.rows = page.rows;
      this.offset = page.offset;
      this.rowsKey = key;
      this.matching = page.matching;
      this.loaded = true;
    }
    const byId = new Map(this.rows.map((agent) => [agent.id, agent]));
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

  private render() {
    // Until the rows of new filters arrive, the last ones stay (marked busy) rather than a blank table.
    const current = this.rowsKey === queryKey(this.query);
    this.el.setAttribute('aria-busy', String(!current));
    this.el.setAttribute('aria-rowcount', String(this.matching + 1));
    this.empty.hidden = !this.loaded || this.matching > 0;
    this.empty.textContent = this.total
      ? 'No agent matches these filters.'
      : 'No agents yet. An agent appears here when a runner lists it in its config or an agent token is created for it.';
    this.paintWindow();
    this.onRender(this.matching, this.total);
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
    const total = this.matching;
    if (this.el.offsetParent === null && total) return; // hidden (agent detail open): nothing to place
    const height = this.rowHeight;
    const top = this.body.getBoundingClientRect().top;
    const first = Math.max(0, Math.min(total, Math.floor(-top / height) - OVERSCAN));
    const bottom = Math.ceil((window.innerHeight - top) / height) + OVERSCAN;
    const last = Math.min(total, Math.max(first, bottom));
    // as far as the viewport reaches, however many matched last time (the count may have grown)
    this.askFor(first, Math.max(first, bottom));

    // The rows read that fall in the window (one stretch: the rows read are consecutive).
    const start = Math.max(first, this.offset);
    const end = Math.max(start, Math.min(last, this.offset + this.rows.length, total));
    this.body.style.paddingTop = `${start * height}px`;
    this.body.style.paddingBottom = `${(total - end) * height}px`;

    // Walk the wanted rows against the current children; insertBefore only where they differ.
    const wanted = new Set<AgentRowView>();
    let cursor = this.body.firstChild;
    for (let index = start; index < end; index++) {
      const view = this.view(this.rows[index - this.offset]);
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

  /** Asks for the rows of [first, last) and some around them, unless the rows asked for cover them. */
  private askFor(first: number, last: number) {
    const key = queryKey(this.query);
    const asked = this.asked;
    const covered = asked.key === key && asked.offset <= first && last <= asked.offset + asked.limit;
    if (covered) return;
    const offset = Math.max(0, first - READ_AHEAD);
    this.asked = { key, offset, limit: Math.min(1000, last - offset + READ_AHEAD) };
    this.onWindow(this.query, this.asked.offset, this.asked.limit);
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
