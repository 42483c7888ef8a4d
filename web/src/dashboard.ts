// The operator's page: summary, filters, the agents table, one agent's detail or the hosts, kept live
// by the feed. Routes are hashes (#/?status=..., #/agents/<name>, #/hosts) so a static host needs no
// rewrite rules, a link shares exactly what is on screen, and the browser's Back button works:
// filters and sort are written into the URL as they change, each change an entry of its own so Back
// undoes it (typing in the search makes one entry per burst, not one per keystroke); pages are entries
// of their own.
import type { SupabaseClient } from '@supabase/supabase-js';
import { AGENT_STATUSES, type AgentStatus } from '../../shared/status.ts';
import { Actions } from './actions.ts';
import { AlertsPage } from './alerts/page.ts';
import { PausedAlerts } from './alerts/pauses.ts';
import { type AgentRow, fetchAgentsWithRunnerAway, HISTORY_FILTERS, type HistoryFilter } from './api.ts';
import type { DashboardConfig } from './config.ts';
import { ConnectionView } from './connection.ts';
import { AgentDetail } from './detail.ts';
import { h, replace, setText } from './dom.ts';
import { Filters } from './filters.ts';
import { HostsView } from './hosts.ts';
import { LiveFeed, type Snapshot } from './live.ts';
import { MARKS } from './marks.ts';
import { Notices } from './notices.ts';
import { agentHref, type RowHandlers } from './row.ts';
import { listenForShortcuts } from './shortcuts.ts';
import { Summary } from './summary.ts';
import { AgentTable, SORT_KEYS, type Filter, type SortKey } from './table.ts';
import { themeControl, toggleTheme } from './theme.ts';
import { formatAgo } from './time.ts';

/** The list's state as the URL keeps it: #/?status=error&host=web-1&q=scraper&sort=cpu&desc=1 */
interface ListState extends Filter {
  sort: SortKey;
  descending: boolean;
}

function parseList(query: string): ListState {
  const params = new URLSearchParams(query);
  const status = params.get('status') ?? '';
  const sort = params.get('sort') ?? 'status';
  return {
    status: (AGENT_STATUSES as readonly string[]).includes(status) ? (status as AgentStatus) : '',
    host: params.get('host') ?? '',
    search: params.get('q') ?? '',
    sort: (SORT_KEYS as readonly string[]).includes(sort) ? (sort as SortKey) : 'status',
    descending: params.get('desc') === '1',
  };
}

function listHash(state: ListState): string {
  const params = new URLSearchParams();
  if (state.status) params.set('status', state.status);
  if (state.host) params.set('host', state.host);
  if (state.search) params.set('q', state.search);
  if (state.sort !== 'status') params.set('sort', state.sort);
  if (state.descending) params.set('desc', '1');
  const query = params.toString();
  return `#/${query ? `?${query}` : ''}`;
}

// Typing pauses longer than this start a new history entry for the search.
const SEARCH_BURST_MS = 1500;

export class Dashboard {
  private readonly feed: LiveFeed;
  private readonly notices: Notices;
  private readonly table: AgentTable;
  private readonly detail: AgentDetail;
  private readonly alerts: AlertsPage;
  private readonly paused: PausedAlerts;
  private readonly connection: ConnectionView;
  private readonly runners: HTMLParagraphElement;
  private readonly listView: HTMLElement;
  private readonly startAll: HTMLButtonElement;
  private readonly summary: Summary;
  private readonly filters: Filters;
  private readonly hosts: HostsView;
  private readonly nav: { agents: HTMLAnchorElement; hosts: HTMLAnchorElement; alerts: HTMLAnchorElement };
  private snapshot: Snapshot | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private stopShortcuts: (() => void) | undefined;
  /** the list's filters and sort, kept while a detail or the hosts are shown, so Back restores them */
  private list: ListState = parseList('');
  /** what to do once the next route shows its page (focus the search after `/` on another page) */
  private afterRoute: (() => void) | undefined;
  private readonly onHash = () => this.route();
  /** what the last saveList() wrote, and when: keystrokes of one search burst share one entry */
  private lastChange: 'search' | 'filter' | undefined;
  private lastChangeAt = -Infinity;

  constructor(
    private readonly root: HTMLElement,
    private readonly client: SupabaseClient,
    config: DashboardConfig,
    email: string,
    signOut: () => void,
  ) {
    const notices = new Notices();
    this.notices = notices;
    const actions = new Actions(client, notices, () => this.feed.refreshNow(), email);
    const handlers: RowHandlers = {
      command: (agent, action) => void actions.command(agent, action),
      forceStop: (agent) => void actions.forceStop(agent),
    };
    this.table = new AgentTable(handlers);
    this.paused = new PausedAlerts(client);
    this.detail = new AgentDetail(client, handlers, this.paused);
    this.alerts = new AlertsPage(client, notices, () => void this.paused.refresh());
    this.detail.history.onFilter = (filter) => {
      if (this.detail.openName !== undefined) {
        history.pushState(null, '', `${agentHref(this.detail.openName)}${filter ? `?history=${filter}` : ''}`);
      }
    };
    const filters = new Filters((patch) => {
      this.table.setFilter(patch);
      if (patch.status !== undefined) summary.select(patch.status);
      this.saveList(patch.search !== undefined ? 'search' : 'filter');
    });
    const summary = new Summary((status) => {
      this.table.setFilter({ status });
      filters.setStatus(status);
      summary.select(status);
      this.saveList();
    });
    this.summary = summary;
    this.filters = filters;
    this.table.onRender = (shown, total) => filters.setShown(shown, total);
    this.table.onSort = () => this.saveList();
    this.table.onWindow = (query, offset, limit) => this.feed.setWindow({ query, offset, limit });
    this.hosts = new HostsView((host, managed) => void this.startAllOn(actions, managed, host));
    this.nav = {
      agents: h('a', { href: '#/' }, 'Agents'),
      hosts: h('a', { href: '#/hosts' }, 'Hosts'),
      alerts: h('a', { href: '#/alerts' }, 'Alerts'),
    };
    this.feed = new LiveFeed(client, {
      realtime: config.realtime,
      onSnapshot: (snapshot) => this.apply(snapshot),
      onState: (state) => this.connection.setState(state),
    });
    this.connection = new ConnectionView(this.feed.pollMs, config.supabaseUrl, (old) => {
      this.root.classList.toggle('old', old);
    });
    this.startAll = h(
      'button',
      {
        type: 'button',
        class: 'btn btn-primary',
        disabled: true,
        on: { click: () => void this.startAllOn(actions, this.managedCount()) },
      },
      'Start all',
    );
    this.runners = h('p', { class: 'runners muted' });
    this.listView = h(
      'section',
      { class: 'list', 'aria-label': 'All agents' },
      summary.el,
      h('div', { class: 'toolbar' }, filters.el, this.startAll),
      this.table.el,
    );

    replace(
      root,
      h(
        'header',
        { class: 'top' },
        h('h1', null, 'Agent status'),
        h('nav', { class: 'nav', 'aria-label': 'Pages' }, this.nav.agents, this.nav.hosts, this.nav.alerts),
        this.connection.indicator,
        h(
          'div',
          { class: 'user' },
          h('span', { class: 'muted shortcut-hint' }, 'Press ? for shortcuts'),
          themeControl(),
          h('span', { class: 'muted' }, email),
          h('button', { type: 'button', class: 'btn', on: { click: signOut } }, 'Sign out'),
        ),
      ),
      this.connection.banner,
      this.paused.banner,
      h('main', null, this.listView, this.detail.el, this.hosts.el, this.alerts.el, this.runners),
      notices.el,
    );
  }

  start(): void {
    window.addEventListener('hashchange', this.onHash);
    document.addEventListener('click', closeMenus);
    document.addEventListener('keydown', closeMenusOnEscape);
    this.stopShortcuts = listenForShortcuts([
      { keys: '/', what: 'search agents by name', run: () => this.goToList(() => this.filters.focusSearch()) },
      { keys: 'a', what: 'all agents', run: () => this.goToList() },
      { keys: 'h', what: 'hosts', run: () => (location.hash = '#/hosts') },
      { keys: 'r', what: 'refresh now', run: () => this.feed.refreshNow() },
      { keys: 't', what: 'light or dark theme', run: toggleTheme },
      { keys: 'l', what: "on an agent's page: show its logs", run: () => void this.detail.logsView.ask() },
      { keys: 'f', what: "on an agent's page: follow its logs (again: stop)", run: () => this.toggleFollow() },
      { keys: 'Escape', what: 'back to all agents', run: () => this.goToList() },
    ]);
    this.route();
    this.feed.start();
    this.paused.start();
    this.ticker = setInterval(() => {
      this.table.tick();
      this.detail.tick();
      this.hosts.tick();
      this.connection.tick();
      this.paintRunners();
    }, 1000);
  }

  private toggleFollow() {
    if (this.detail.openName === undefined) return;
    const follow = this.detail.el.querySelector<HTMLInputElement>('#log-follow');
    this.detail.logsView.setFollow(!follow?.checked);
  }

  /** The list as it was left (its filters and sort), then `then` once it is shown. */
  private goToList(then?: () => void) {
    if (!this.listView.hidden) return then?.();
    this.afterRoute = then;
    location.hash = listHash(this.list);
  }

  /**
   * Writes the list's filters and sort into the URL as a new history entry, so Back undoes the change
   * (replacing the entry made Back leave the app). Keystrokes of one search burst share one entry.
   */
  private saveList(change: 'search' | 'filter' = 'filter') {
    this.list = { ...this.table.filterState, ...this.table.sortState };
    if (this.listView.hidden) return;
    const hash = listHash(this.list);
    if (hash === location.hash) return;
    const sameBurst = change === 'search' && this.lastChange === 'search' && performance.now() - this.lastChangeAt < SEARCH_BURST_MS;
    if (sameBurst) history.replaceState(null, '', hash);
    else history.pushState(null, '', hash);
    this.lastChange = change;
    this.lastChangeAt = performance.now();
  }

  async stop(): Promise<void> {
    window.removeEventListener('hashchange', this.onHash);
    document.removeEventListener('click', closeMenus);
    document.removeEventListener('keydown', closeMenusOnEscape);
    clearInterval(this.ticker);
    this.stopShortcuts?.();
    this.detail.close();
    this.alerts.close();
    this.paused.stop();
    this.table.destroy();
    await this.feed.stop();
  }

  private apply(snapshot: Snapshot) {
    const first = this.snapshot === undefined;
    this.snapshot = snapshot;
    const started = performance.now();
    const page = snapshot.page;
    this.table.apply(snapshot.window.query, page, snapshot.commands, snapshot.resources, snapshot.clock);
    this.summary.update(page.statuses, page.total);
    this.filters.setHosts(page.hosts);
    performance.measure(MARKS.applyScript, { start: started, end: performance.now() });
    // Measured up to the frame after, so style, layout and paint of the change count too.
    requestAnimationFrame(() =>
      setTimeout(() => {
        performance.measure(MARKS.apply, { start: started, end: performance.now() });
        if (first) performance.mark(MARKS.firstRender);
      }, 0),
    );
    this.updateDetail();
    this.hosts.update(snapshot.runners, page.runners, snapshot.clock);
    this.startAll.disabled = this.managedCount() === 0;
    this.startAll.title = this.startAll.disabled ? 'no runner manages any agent yet' : '';
    this.paintRunners();
  }

  /** The agents a runner manages, as the database counted them. */
  private managedCount(): number {
    let managed = 0;
    for (const tally of Object.values(this.snapshot?.page.runners ?? {})) {
      for (const count of Object.values(tally)) managed += count ?? 0;
    }
    return managed;
  }

  /** Shows the open agent as the last poll read it by name; nothing until a poll has read it. */
  private updateDetail() {
    const snapshot = this.snapshot;
    const name = this.detail.openName;
    if (!snapshot || name === undefined || snapshot.agent?.name !== name) return;
    this.detail.update(snapshot.agent.row ? [snapshot.agent.row] : [], snapshot.commands, snapshot.clock);
  }

  /**
   * Start all (on one host): the dialog names the agents whose runner is away, read when asked (the
   * page holds only the rows in view), beside the count the database made.
   */
  private async startAllOn(actions: Actions, managed: number, host?: string) {
    let away: AgentRow[];
    try {
      away = await fetchAgentsWithRunnerAway(this.client, host);
    } catch (error) {
      this.notices.show((error as Error).message, 'error');
      return;
    }
    await actions.startAll(managed, away, host);
  }

  private paintRunners() {
    const snapshot = this.snapshot;
    if (!snapshot) return;
    setText(
      this.runners,
      snapshot.runners.length
        ? `Runners: ${snapshot.runners
            .map((r) => `${r.host} ${r.status}, seen ${formatAgo(snapshot.clock.since(r.last_seen_at))}`)
            .join('; ')}`
        : "No runner has registered yet: Start and Stop need a runner on the agents' host.",
    );
  }

  private route() {
    const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
    const agent = /^\/agents\/(.+)$/.exec(path);
    const page = agent ? 'agent' : path === '/hosts' ? 'hosts' : path === '/alerts' ? 'alerts' : 'list';
    for (const [key, link] of [
      ['list', this.nav.agents],
      ['hosts', this.nav.hosts],
      ['alerts', this.nav.alerts],
    ] as const) {
      if (page === key) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    if (page !== 'hosts') this.hosts.hide();
    if (page !== 'alerts') this.alerts.close();
    if (page === 'agent') {
      const name = decodeURIComponent(agent![1]);
      const filter = new URLSearchParams(query).get('history') ?? '';
      this.listView.hidden = true;
      const historyFilter = (HISTORY_FILTERS as readonly string[]).includes(filter) ? (filter as HistoryFilter) : '';
      if (this.detail.openName !== name) this.detail.open(name, historyFilter);
      // Back or Forward between two filters of the same agent's history
      else if (this.detail.history.currentFilter !== historyFilter) this.detail.history.open(name, historyFilter);
      this.feed.watchAgent(name);
      this.updateDetail();
      return;
    }
    const wasOpen = this.detail.openName;
    this.detail.close();
    this.feed.watchAgent(undefined);
    if (page === 'hosts' || page === 'alerts') {
      this.listView.hidden = true;
      if (page === 'hosts') this.hosts.show();
      else this.alerts.open(location.hash);
      return;
    }
    this.list = parseList(query);
    this.filters.setAll(this.list);
    this.summary.select(this.list.status);
    this.table.setFilter({ status: this.list.status, host: this.list.host, search: this.list.search });
    this.table.setSort(this.list.sort, this.list.descending);
    this.listView.hidden = false;
    this.table.refresh();
    // Back from a detail: put focus on that agent's link, not the top of the page.
    if (wasOpen) this.root.querySelector<HTMLElement>(`[data-agent="${CSS.escape(wasOpen)}"] a.name`)?.focus();
    this.afterRoute?.();
    this.afterRoute = undefined;
  }
}

function closeMenus(event: Event) {
  for (const menu of document.querySelectorAll<HTMLDetailsElement>('details.menu[open]')) {
    if (!menu.contains(event.target as Node)) menu.open = false;
  }
}

function closeMenusOnEscape(event: KeyboardEvent) {
  if (event.key !== 'Escape') return;
  for (const menu of document.querySelectorAll<HTMLDetailsElement>('details.menu[open]')) {
    menu.open = false;
    menu.querySelector('summary')?.focus();
  }
}
