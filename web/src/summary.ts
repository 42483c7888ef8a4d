// Counts per status at the top of the page; each count is also a filter button.
import { AGENT_STATUSES, type AgentStatus } from '../../shared/status.ts';
import { h, setText } from './dom.ts';
import { statusChip } from './status-view.ts';

export class Summary {
  readonly el: HTMLDivElement;
  private readonly total: HTMLSpanElement;
  private readonly all: HTMLButtonElement;
  private readonly counts = new Map<AgentStatus, { button: HTMLButtonElement; count: HTMLSpanElement }>();
  private selected: AgentStatus | '' = '';

  constructor(onSelect: (status: AgentStatus | '') => void) {
    this.total = h('span', { class: 'count' }, '0');
    const all = h(
      'button',
      { type: 'button', class: 'tally', 'aria-pressed': 'true', on: { click: () => onSelect('') } },
      h('span', { class: 'tally-label' }, 'All agents'),
      this.total,
    );
    this.all = all;
    this.el = h('div', { class: 'summary', role: 'group', 'aria-label': 'Agents per status (press to filter)' }, all);
    for (const status of AGENT_STATUSES) {
      const count = h('span', { class: 'count' }, '0');
      const button = h(
        'button',
        {
          type: 'button',
          class: `tally tally-${status}`,
          'aria-pressed': 'false',
          'data-status': status,
          on: { click: () => onSelect(this.selected === status ? '' : status) },
        },
        statusChip(status),
        count,
      );
      this.counts.set(status, { button, count });
      this.el.append(button);
    }
  }

  /** Every agent per status, as the database counted them (dashboard_agent_page), and all of them. */
  update(statuses: Partial<Record<AgentStatus, number>>, total: number): void {
    for (const status of AGENT_STATUSES) setText(this.counts.get(status)!.count, String(statuses[status] ?? 0));
    setText(this.total, String(total));
  }

  select(status: AgentStatus | ''): void {
    this.selected = status;
    this.all.setAttribute('aria-pressed', String(status === ''));
    for (const [key, { button }] of this.counts) button.setAttribute('aria-pressed', String(key === status));
  }
}
