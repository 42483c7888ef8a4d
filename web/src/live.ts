// Keeps the dashboard's data current. Polling is the truth: it always runs, every few seconds when
// Realtime is unavailable (the local stack has none) and every 30 s when it is. A Realtime change
// only makes the next poll happen now, because the live view applies staleness at read time and a
// change event carries the stored row, not the live one. A failed poll keeps the last data, marks it
// old and retries with backoff until the API answers again.
//
// Most polls read only the agents that changed (written since the last read, or past their stale
// deadline); every minute, and whenever a runner's row changed, a poll reads them all, which also
// drops deleted agents and refreshes what depends on runners. With 2,000 agents heartbeating every
// 30 s that is ~200 rows a poll instead of 2,000.
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import {
  fetchAgents,
  fetchCommands,
  fetchResources,
  fetchRunners,
  COMMAND_OUTCOME_SECONDS,
  type AgentRow,
  type CommandRow,
  type ResourceRow,
  type RunnerRow,
} from './api.ts';
import { DbClock } from './time.ts';
import { commandAt } from '../../shared/status.ts';

export interface Snapshot {
  agents: AgentRow[];
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

const FULL_READ_MS = 60_000;
// A write's updated_at is its transaction's start, which can precede a read that does not see it
// yet; reading back this far catches such writes (agent-status transactions take milliseconds).
const WRITE_SKEW_MS = 5_000;
const REALTIME_TABLES = ['agent_status', 'agent_commands', 'agent_events', 'runners'];
// agent_resources is not among them: figures change every minute per agent and polling reads them
const MAX_BACKOFF_MS = 15_000;
// A dashboard left open in a background tab polls this slowly: nobody is looking, and on a large
// fleet each poll is a full read of the live view.
const HIDDEN_POLL_MS = 30_000;
const REALTIME_RETRY_MS = 60_000;

export class LiveFeed {
  readonly pollMs: number;
  private readonly realtimePollMs: number;
  private state: FeedState = { mode: 'connecting', lastDataAt: null, error: null };
  private running = false;
  private wake: (() => void) | undefined;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private channel: RealtimeChannel | undefined;
  private failures = 0;
  private lastPollAt = -Infinity;
  private lastFullAt = -Infinity;
  private agents = new Map<number, AgentRow>();
  private resources = new Map<number, ResourceRow>();
  private clock: DbClock | undefined;
  private runnersKey = '';
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
    this.wake?.();
  }

  private setState(patch: Partial<FeedState>) {
    this.state = { ...this.state, ...patch };
    this.options.onState(this.state);
  }

  private async run() {
    while (this.running) {
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
      await this.sleep(document.hidden ? Math.max(interval, HIDDEN_POLL_MS) : interval);
    }
  }

  private async poll(): Promise<Snapshot> {
    const startedAt = performance.now();
    this.lastPollAt = startedAt;
    const previous = this.clock;
    const full = previous === undefined || startedAt - this.lastFullAt >= FULL_READ_MS;
    const changes = full
      ? undefined
      : {
          writtenSince: iso(previous.observedAt - WRITE_SKEW_MS),
          staleBy: iso(previous.now()),
        };
    const [agents, runners, resources] = await Promise.all([
      fetchAgents(this.client, changes),
      fetchRunners(this.client),
      fetchResources(this.client, changes?.writtenSince),
    ]);
    const receivedAt = performance.now();
    // The database's clock from this read; when it returned no rows, the last one carried forward.
    const clock = agents.length
      ? new DbClock(Date.parse(agents[0].observed_at), receivedAt)
      : new DbClock(previous ? previous.now() : 0, receivedAt);
    // a pending command past its expiry reads expired now, as the process manager's answer does
    const commands = (
      agents.length || this.agents.size ? await fetchCommands(this.client, iso(clock.observedAt - COMMAND_OUTCOME_SECONDS * 1000)) : []
    ).map((command) => commandAt(command, clock.now()));

    if (full) {
      this.agents = new Map();
      this.resources = new Map();
      this.lastFullAt = startedAt;
    }
    for (const agent of agents) this.agents.set(agent.id, agent);
    for (const resource of resources) this.resources.set(resource.agent_id, resource);
    const runnersKey = runners.map((r) => `${r.id}:${r.status}`).join();
    if (runnersKey !== this.runnersKey) {
      this.runnersKey = runnersKey;
      this.lastFullAt = -Infinity;
    }
    this.clock = clock;
    return { agents: [...this.agents.values()], commands, runners, resources: this.resources, clock };
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

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /fetch|network|load failed|abort|timeout/i.test(message) ? `the API did not answer (${message})` : message;
}
