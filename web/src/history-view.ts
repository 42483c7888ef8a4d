// An agent's history on its page: newest first, a page at a time ("Older" loads the next page by
// keyset), filtered by kind, with runs of identical events folded by the database (agent_history):
// a crash loop of 200 restarts is one row, "crashed and started ×200, 02:44–02:47".
import type { SupabaseClient } from '@supabase/supabase-js';
import { fetchHistory, HISTORY_FILTERS, type HistoryFilter, type HistoryRow } from './api.ts';
import { h, replace, setText } from './dom.ts';
import { formatTimestamp } from './time.ts';

const PAGE = 30;

const FILTER_LABELS: Record<HistoryFilter | '', string> = {
  '': 'Everything',
  status: 'Status changes',
  problems: 'Errors and warnings',
  commands: 'Commands',
  operator: 'Operator actions',
};

function kindLabel(kind: string): string {
  return kind.replaceAll('_', ' ');
}

/** What a folded row says: "crashed and started ×37" or "heartbeat ×4"; a lone event's kind. */
export function foldedLabel(row: HistoryRow): string {
  if (row.count === 1) return kindLabel(row.kind);
  const times = row.cycle.length === 2 ? Math.ceil(row.count / 2) : row.count;
  return `${row.cycle.map(kindLabel).join(' and ')} ×${times}`;
}

function describe(row: HistoryRow): string {
  const parts = [row.message ?? ''];
  if (row.details.exit_code !== undefined) parts.push(`exit code ${row.details.exit_code}`);
  if (row.details.exit_signal) parts.push(`signal ${row.details.exit_signal}`);
  if (row.health !== null) parts.push(`health ${row.health}`);
  return parts.filter(Boolean).join(' · ');
}

function when(row: HistoryRow): string {
  if (row.count === 1) return formatTimestamp(row.at);
  const from = formatTimestamp(row.first_at);
  const to = formatTimestamp(row.at);
  // the same day: repeat only the time
  const sameDay = from.slice(0, from.lastIndexOf(',')) === to.slice(0, to.lastIndexOf(','));
  return `${from} – ${sameDay ? to.slice(to.lastIndexOf(',') + 2) : to}`;
}

export class HistoryView {
  readonly el: HTMLElement;
  private readonly filter: HTMLSelectElement;
  private readonly body: HTMLTableSectionElement;
  private readonly table: HTMLTableElement;
  private readonly empty: HTMLParagraphElement;
  private readonly older: HTMLButtonElement;
  private rows: HistoryRow[] = [];
  private name: string | undefined;
  private generation = 0;
  /** the filter chosen, for the URL */
  onFilter: (filter: HistoryFilter | '') => void = () => {};

  constructor(
    private readonly client: SupabaseClient,
    private readonly onError: (message: string | null) => void,
  ) {
    this.filter = h(
      'select',
      { id: 'history-filter', on: { change: () => this.setFilter(this.filter.value as HistoryFilter | '') } },
      ...(['', ...HISTORY_FILTERS] as const).map((key) => h('option', { value: key }, FILTER_LABELS[key])),
    );
    this.body = h('tbody');
    this.table = h(
      'table',
      null,
      h('thead', null, h('tr', null, ...['When', 'Event', 'Status', 'Who', 'Message'].map((label) => h('th', { scope: 'col' }, label)))),
      this.body,
    );
    this.empty = h('p', { class: 'muted' }, 'Loading history…');
    this.older = h('button', { type: 'button', class: 'btn', hidden: true, on: { click: () => void this.loadOlder() } }, 'Older');
    this.el = h(
      'div',
      { class: 'history' },
      h('div', { class: 'history-tools' }, h('label', { for: 'history-filter' }, 'Show'), this.filter),
      this.table,
      this.empty,
      this.older,
    );
  }

  get currentFilter(): HistoryFilter | '' {
    return this.filter.value as HistoryFilter | '';
  }

  /** Shows another agent's history (or the same with another filter) from its newest page. */
  open(name: string, filter: HistoryFilter | '' = ''): void {
    this.name = name;
    this.filter.value = filter;
    this.rows = [];
    this.paint();
    setText(this.empty, 'Loading history…');
    void this.refresh();
  }

  setFilter(filter: HistoryFilter | ''): void {
    if (!this.name) return;
    this.open(this.name, filter);
    this.onFilter(filter);
  }

  /** Reads the newest page again and keeps the older pages already shown below it. */
  async refresh(): Promise<void> {
    const name = this.name;
    if (!name) return;
    const generation = ++this.generation;
    try {
      const fresh = await fetchHistory(this.client, name, { filter: this.currentFilter, limit: PAGE });
      if (generation !== this.generation) return;
      const boundary = fresh.at(-1)?.oldest_id ?? Infinity;
      const kept = fresh.length < PAGE ? [] : this.rows.filter((row) => row.id < boundary);
      this.rows = [...fresh, ...kept];
      this.older.hidden = fresh.length < PAGE && !kept.length;
      this.onError(null);
      this.paint();
    } catch (error) {
      if (generation === this.generation) this.onError(`${(error as Error).message}. Retrying with the next update.`);
    }
  }

  private async loadOlder(): Promise<void> {
    const name = this.name;
    const last = this.rows.at(-1);
    if (!name || !last) return;
    const generation = ++this.generation;
    this.older.disabled = true;
    try {
      const page = await fetchHistory(this.client, name, { filter: this.currentFilter, before: last.oldest_id, limit: PAGE });
      if (generation !== this.generation) return;
      this.rows.push(...page);
      this.older.hidden = page.length < PAGE;
      this.paint();
    } catch (error) {
      this.onError((error as Error).message);
    } finally {
      this.older.disabled = false;
    }
  }

  private paint(): void {
    this.table.hidden = this.rows.length === 0;
    this.empty.hidden = this.rows.length > 0;
    if (!this.rows.length) setText(this.empty, this.currentFilter ? 'Nothing of this kind in the history kept.' : 'No history yet.');
    replace(
      this.body,
      ...this.rows.map((row) =>
        h(
          'tr',
          { 'data-kind': row.kind, 'data-count': row.count, class: row.count > 1 ? 'folded' : undefined },
          h('td', { class: 'when' }, when(row)),
          h('td', null, foldedLabel(row)),
          h(
            'td',
            null,
            row.to_status && row.from_status !== row.to_status ? `${row.from_status ?? '–'} → ${row.to_status}` : (row.to_status ?? ''),
          ),
          h('td', null, row.actor ?? row.source),
          h('td', { class: 'message' }, describe(row)),
        ),
      ),
    );
  }
}
