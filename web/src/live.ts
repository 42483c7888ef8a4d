// Keeps the dashboard's data current. Polling is the truth: it always runs, every few seconds when
// Realtime is unavailable (the local stack has none) and every 30 s when it is. A Realtime change
// only makes the next poll happen now, because the live view applies staleness at read time and a
// change event carries the stored row, not the live one. A failed poll keeps the last data, marks it
// old and retries with backoff until the API answers again.
//
// A poll reads what is on screen, never the whole fleet: the rows in view of the list (the database
// filters, sorts and counts them: public.dashboard_agent_page), the agent whose page is open, their
// commands and figures, and the runners. At 100,000 agents that is one call answering ~100 rows and
// the counts, so a change to one agent costs the same read as no change at all; and a poll that sends
// back the mark of the last answer to the same read costs the database far less while nothing it
// counted changed (it reads the rows in view again, by id).
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import {
  fetchAgent,
  fetchAgentPage,
  fetchCommands,
  fetchResources,
  fetchRunners,
  COMMAND_OUTCOME_SECONDS,
  type AgentPage,
  type AgentQuery,
  type AgentRow,
  type CommandRow,
  type ResourceRow,
  type RunnerRow,
} from './api.ts';
import { DbClock } from './time.ts';
import { commandAt } from '../../shared/status.ts';

/** The rows of the list a poll reads: its filters and sort, and the window in view. */
export interface ListWindow {
  query: AgentQuery;
  offset: number;
  limit: number;
}

export interface Snapshot {
  /** what the list asked for, and the page the database answered */
  window: ListWindow;
  page: AgentPage;
  /** the agent whose page is open, as read by name (null: not visible to this user) */
  agent?: { name: string; row: AgentRow | null };
  commands: CommandRow[];
  runners: RunnerRow[];
  /** the latest CPU and memory per agent id (sent by runners about once a minute) */
  resources: Map<number, ResourceRow>;
  clock: DbClock;
}

export type FeedMode = 'connecting' | 'realtime' | 'polling';

export interface FeedState {
  mode: FeedMode;
  /** performance.now() of the last data that arrived */
  lastDataAt: number | null;
  /** why the last poll failed; null when it succeeded */
  error: string | null;
}

export interface LiveFeedOptions {
  onSnapshot(snapshot: Snapshot): void;
  onState(state: FeedState): void;
  pollMs?: number;
  realtimePollMs?: number;
  /** false: poll only, never open the Realtime socket (the API has none) */
  realtime?: boolean;
}

const REALTIME_TABLES = ['agent_status', 'agent_commands', 'agent_events', 'runners'];
// agent_resources is not among them: figures change every minute per agent and polling reads them
const MAX_BACKOFF_MS = 15_000;
// A dashboard left open in a background tab polls this slowly: nobody is looking.
const HIDDEN_POLL_MS = 30_000;
const REALTIME_RETRY_MS = 60_000;

export class LiveFeed {
  readonly pollMs: number;
  private readonly realtimePollMs: number;
  private state: FeedState = { mode: 'connecting', lastDataAt: null, error: null };
  private running = false;
  private wake: (() => void) | undefined;
  /** a refresh asked for while a poll ran: the next one starts at once */
  private pending = false;
  private window: ListWindow = {
    query: { status: '', host: '', search: '', sort: 'status', descending: false },
    offset: 0,
    limit: 100,
  };
  private watched: string | undefined;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private channel: RealtimeChannel | undefined;
  private failures = 0;
  /** the last page read, and for which window: the next read of the same window sends its mark */
  private last: { window: ListWindow; page: AgentPage } | undefined;
  private lastPollAt = -Infinity;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: SupabaseClient,
    private readonly options: LiveFeedOptions,
  ) {
    this.pollMs = options.pollMs ?? 2500;
    this.realtimePollMs = options.realtimePollMs ?? 30_000;
  }

  private readonly onVisibility = () => {
    if (!document.hidden) this.refreshNow();
  };

  start(): void {
    if (this.running) return;
    this.running = true;
    document.addEventListener('visibilitychange', this.onVisibility);
    if (this.options.realtime !== false) this.subscribe();
    else this.setState({ mode: 'polling' });
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    document.removeEventListener('visibilitychange', this.onVisibility);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.wake?.();
    if (this.channel) await this.client.removeChannel(this.channel);
    this.channel = undefined;
    await this.loop;
  }

  /** Polls now instead of at the next tick (after a command, or a Realtime hint). */
  refreshNow(): void {
    if (this.wake) this.wake();
    else this.pending = true;
  }

  /** Reads these rows of the list from now on, starting now. */
  setWindow(window: ListWindow): void {
    this.window = window;
    this.refreshNow();
  }

  /** Reads this agent by name too (its page is open), starting now; undefined: none. */
  watchAgent(name: string | undefined): void {
    if (name === this.watched) return;
    this.watched = name;
    if (name !== undefined) this.refreshNow();
  }

  private setState(patch: Partial<FeedState>) {
    this.state = { ...this.state, ...patch };
    this.options.onState(this.state);
  }

  private async run() {
    while (this.running) {
      this.pending = false;
      try {
        const snapshot = await this.poll();
        if (!this.running) return;
        this.failures = 0;
        this.setState({ lastDataAt: snapshot.clock.receivedAt, error: null });
        this.options.onSnapshot(snapshot);
      } catch (error) {
        if (!this.running) return;
        this.failures++;
        this.setState({ error: describe(error) });
      }
      const interval = this.state.error
        ? Math.min(this.pollMs * 2 ** (this.failures - 1), MAX_BACKOFF_MS)
        : this.state.mode === 'realtime'
          ? this.realtimePollMs
          : this.pollMs;
      if (!this.pending) await this.sleep(document.hidden ? Math.max(interval, HIDDEN_POLL_MS) : interval);
    }
  }

  private async poll(): Promise<Snapshot> {
    this.lastPollAt = performance.now();
    const window = this.window;
    const watched = this.watched;
    const last = this.last && sameWindow(this.last.window, window) ? this.last.page : undefined;
    const [page, runners, agent] = await Promise.all([
      fetchAgentPage(this.client, window.query, window.offset, window.limit, last),
      fetchRunners(this.client),
      watched === undefined ? undefined : fetchAgent(this.client, watched),
    ]);
    const clock = new DbClock(Date.parse(page.observed_at), performance.now());
    const ids = page.rows.map((row) => row.id);
    if (agent && !ids.includes(agent.id)) ids.push(agent.id);
    const [fetched, resources] = await Promise.all([
      fetchCommands(this.client, iso(clock.observedAt - COMMAND_OUTCOME_SECONDS * 1000), ids),
      fetchResources(this.client, ids),
    ]);
    // a pending command past its expiry reads expired now, as the process manager's answer does
    const commands = fetched.map((command) => commandAt(command, clock.now()));
    this.last = { window, page };
    return {
      window,
      page,
      agent: watched === undefined ? undefined : { name: watched, row: agent ?? null },
      commands,
      runners,
      resources: new Map(resources.map((resource) => [resource.agent_id, resource])),
      clock,
    };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.timers.add(timer);
      function done() {
        resolve();
      }
      this.wake = () => {
        clearTimeout(timer);
        this.timers.delete(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private subscribe() {
    if (!this.running) return;
    let channel = this.client.channel('agent-status-dashboard');
    let hinted: ReturnType<typeof setTimeout> | undefined;
    for (const table of REALTIME_TABLES) {
      channel = channel.on('postgres_changes', { event: '*', schema: 'public', table }, () => {
        // Changes become at most one read per polling interval: a fleet of 2,000 agents
        // heartbeating every 30 s sends ~70 changes a second, and a read for each would cost far
        // more than polling. A lone change (a command finishing) still shows within 200 ms.
        if (hinted) return;
        const wait = Math.max(200, this.lastPollAt + this.pollMs - performance.now());
        hinted = setTimeout(() => {
          this.timers.delete(hinted!);
          hinted = undefined;
          this.refreshNow();
        }, wait);
        this.timers.add(hinted);
      });
    }
    this.channel = channel;
    channel.subscribe((status) => {
      if (channel !== this.channel || !this.running) return;
      if (status === 'SUBSCRIBED') {
        this.setState({ mode: 'realtime' });
        this.refreshNow();
      } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT' || status === 'CLOSED') {
        // No Realtime here (or it dropped): poll often, and try Realtime again later without
        // letting supabase-js retry the socket in a tight loop meanwhile.
        this.setState({ mode: 'polling' });
        this.channel = undefined;
        void this.client.removeChannel(channel);
        const retry = setTimeout(() => {
          this.timers.delete(retry);
          this.subscribe();
        }, REALTIME_RETRY_MS);
        this.timers.add(retry);
      }
    });
  }
}

function sameWindow(a: ListWindow, b: ListWindow): boolean {
  return a.offset === b.offset && a.limit === b.limit && JSON.stringify(a.query) === JSON.stringify(b.query);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /fetch|network|load failed|abort|timeout/i.test(message) ? `the API did not answer (${message})` : message;
}
