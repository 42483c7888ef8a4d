// What is paused, for every page: a banner under the header naming each paused agent and host (with
// its end), a mark on their rows in the list, and the agent's page saying its alerts are paused. The
// rows are virtual (table.ts makes and drops them as they scroll), so the mark is a generated style
// rule keyed by the rows' data-agent and data-host, which holds for every row whenever it is made. Read with operator_alert_pauses while
// the dashboard runs; a pause changes rarely, so every 15 s (and at once after the Alerts page acts).
import type { SupabaseClient } from '@supabase/supabase-js';
import type { AlertPauseRow } from '../../../shared/alerts.ts';
import { h, replace } from '../dom.ts';
import { formatTimestamp } from '../time.ts';

const POLL_MS = 15_000;

export class PausedAlerts {
  /** the banner: hidden while nothing is paused */
  readonly banner: HTMLElement = h('div', { class: 'paused-banner', role: 'status', hidden: true });
  private readonly rowMarks = h('style', { id: 'paused-rows' });
  private pauses: AlertPauseRow[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly client: SupabaseClient) {}

  start(): void {
    this.running = true;
    document.head.append(this.rowMarks);
    void this.refresh();
  }

  stop(): void {
    this.running = false;
    this.rowMarks.remove();
    clearTimeout(this.timer);
  }

  /** Calls `listener` whenever the pauses change. */
  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  /** The pause that silences this agent: its own, or its host's. */
  of(agentName: string, host: string | null): AlertPauseRow | undefined {
    return this.pauses.find((p) => p.agent_name === agentName) ?? this.pauses.find((p) => host !== null && p.host === host);
  }

  async refresh(): Promise<void> {
    clearTimeout(this.timer);
    const { data, error } = await this.client.rpc('operator_alert_pauses');
    // a failed read keeps what was shown; the feed's own banner says when the API is down
    if (!error) {
      this.pauses = data as AlertPauseRow[];
      this.paint();
      for (const listener of this.listeners) listener();
    }
    if (this.running) this.timer = setTimeout(() => void this.refresh(), POLL_MS);
  }

  private paint() {
    const rows = this.pauses.map((p) =>
      p.agent_name !== null ? `.rows [data-agent="${CSS.escape(p.agent_name)}"]` : `.rows [data-host="${CSS.escape(p.host ?? '')}"]`,
    );
    this.rowMarks.textContent = rows.length
      ? `${rows.map((row) => `${row} .c-name::after`).join(',\n')} { content: "alerts paused"; }`
      : '';
    this.banner.hidden = this.pauses.length === 0;
    replace(
      this.banner,
      h('strong', null, 'Alerts paused: '),
      this.pauses.map((p) => `${p.agent_name ?? `host ${p.host}`} ${untilText(p)}`).join('; '),
      ' · ',
      h('a', { href: '#/alerts' }, 'Manage'),
    );
  }
}

/** "until Dec 5, 19:00" or "until resumed". */
export function untilText(pause: AlertPauseRow): string {
  return pause.until ? `until ${formatTimestamp(pause.until)}` : 'until resumed';
}
