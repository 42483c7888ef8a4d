// The operator's page: summary, filters, the agents table or one agent's detail, kept live by the
// feed. Routes are hashes (#/ and #/agents/<name>) so a static host needs no rewrite rules and the
// browser's Back button leaves the detail.
import type { SupabaseClient } from '@supabase/supabase-js';
import { Actions } from './actions.ts';
import { AlertsPage } from './alerts/page.ts';
import { ConnectionView } from './connection.ts';
import { AgentDetail } from './detail.ts';
import { h, replace, setText } from './dom.ts';
import { Filters } from './filters.ts';
import { LiveFeed, type Snapshot } from './live.ts';
import { Notices } from './notices.ts';
import type { RowHandlers } from './row.ts';
import { Summary } from './summary.ts';
import { AgentTable } from './table.ts';
import { formatAgo } from './time.ts';

/** User Timing names the bench reads (tests/bench/dashboard.ts). */
export const MARKS = {
  /** set once, after the first data is in the DOM and the next frame is painted */
  firstRender: 'agent-status:first-render',
  /** per poll: from the data arriving to the frame after the DOM was updated */
  apply: 'agent-status:apply',
  /** per poll: the synchronous part of that (diffing and DOM writes) */
  applyScript: 'agent-status:apply-script',
} as const;

export class Dashboard {
  private readonly feed: LiveFeed;
  private readonly table: AgentTable;
  private readonly detail: AgentDetail;
  private readonly alerts: AlertsPage;
  private readonly connection: ConnectionView;
  private readonly runners: HTMLParagraphElement;
  private readonly listView: HTMLElement;
  private readonly startAll: HTMLButtonElement;
  private readonly summary: Summary;
  private readonly filters: Filters;
  private snapshot: Snapshot | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private readonly onHash = () => this.route();

  constructor(
    private readonly root: HTMLElement,
    client: SupabaseClient,
    apiUrl: string,
    email: string,
    signOut: () => void,
  ) {
    const notices = new Notices();
    const actions = new Actions(client, notices, () => this.feed.refreshNow(), email);
    const handlers: RowHandlers = {
      command: (agent, action) => void actions.command(agent, action),
      forceStop: (agent) => void actions.forceStop(agent),
    };
    this.table = new AgentTable(handlers);
    this.detail = new AgentDetail(client, handlers);
    this.alerts = new AlertsPage(client, notices);
    const filters = new Filters((patch) => {
      this.table.setFilter(patch);
      if (patch.status !== undefined) summary.select(patch.status);
    });
    const summary = new Summary((status) => {
      this.table.setFilter({ status });
      filters.setStatus(status);
      summary.select(status);
    });
    this.summary = summary;
    this.filters = filters;
    this.table.onRender = (shown, total) => filters.setShown(shown, total);
    this.feed = new LiveFeed(client, {
      onSnapshot: (snapshot) => this.apply(snapshot),
      onState: (state) => this.connection.setState(state),
    });
    this.connection = new ConnectionView(this.feed.pollMs, apiUrl, (old) => {
      this.root.classList.toggle('old', old);
    });
    this.startAll = h(
      'button',
      {
        type: 'button',
        class: 'btn btn-primary',
        disabled: true,
        on: { click: () => void actions.startAll(this.managedCount()) },
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
        this.connection.indicator,
        h('a', { href: '#/alerts', class: 'nav' }, 'Alerts'),
        h(
          'div',
          { class: 'user' },
          h('span', { class: 'muted' }, email),
          h('button', { type: 'button', class: 'btn', on: { click: signOut } }, 'Sign out'),
        ),
      ),
      this.connection.banner,
      h('main', null, this.listView, this.detail.el, this.alerts.el, this.runners),
      notices.el,
    );
  }

  start(): void {
    window.addEventListener('hashchange', this.onHash);
    document.addEventListener('click', closeMenus);
    document.addEventListener('keydown', closeMenusOnEscape);
    this.route();
    this.feed.start();
    this.ticker = setInterval(() => {
      this.table.tick();
      this.detail.tick();
      this.connection.tick();
      this.paintRunners();
    }, 1000);
  }

  async stop(): Promise<void> {
    window.removeEventListener('hashchange', this.onHash);
    document.removeEventListener('click', closeMenus);
    document.removeEventListener('keydown', closeMenusOnEscape);
    clearInterval(this.ticker);
    this.alerts.close();
    this.table.destroy();
    await this.feed.stop();
  }

  private apply(snapshot: Snapshot) {
    const first = this.snapshot === undefined;
    this.snapshot = snapshot;
    const started = performance.now();
    this.table.apply(snapshot.agents, snapshot.commands, snapshot.clock);
    this.summary.update(snapshot.agents);
    this.filters.setHosts(snapshot.agents.map((agent) => agent.host));
    performance.measure(MARKS.applyScript, { start: started, end: performance.now() });
    // Measured up to the frame after, so style, layout and paint of the change count too.
    requestAnimationFrame(() =>
      setTimeout(() => {
        performance.measure(MARKS.apply, { start: started, end: performance.now() });
        if (first) performance.mark(MARKS.firstRender);
      }, 0),
    );
    this.detail.update(snapshot.agents, snapshot.commands, snapshot.clock);
    this.startAll.disabled = this.managedCount() === 0;
    this.startAll.title = this.startAll.disabled ? 'no runner manages any agent yet' : '';
    this.paintRunners();
  }

  private managedCount(): number {
    return this.snapshot?.agents.filter((agent) => agent.runner_id !== null).length ?? 0;
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
    const match = /^#\/agents\/(.+)$/.exec(location.hash);
    if (location.hash.startsWith('#/alerts')) {
      this.listView.hidden = true;
      this.detail.close();
      this.alerts.open(location.hash);
      return;
    }
    this.alerts.close();
    if (match) {
      const name = decodeURIComponent(match[1]);
      this.listView.hidden = true;
      if (this.detail.openName !== name) this.detail.open(name);
      if (this.snapshot) this.detail.update(this.snapshot.agents, this.snapshot.commands, this.snapshot.clock);
    } else {
      const wasOpen = this.detail.openName;
      this.detail.close();
      this.listView.hidden = false;
      this.table.refresh();
      // Back from a detail: put focus on that agent's link, not the top of the page.
      if (wasOpen) this.root.querySelector<HTMLElement>(`[data-agent="${CSS.escape(wasOpen)}"] a.name`)?.focus();
    }
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
