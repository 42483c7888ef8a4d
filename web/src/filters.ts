// Search by name, host, reason or a badge's words ("crash loop"), filter by status and host, and the count of what the filters let through.
import { AGENT_STATUSES, type AgentStatus } from '../../shared/status.ts';
import { h, replace, setText } from './dom.ts';
import { NO_HOST, type Filter } from './table.ts';

export class Filters {
  readonly el: HTMLDivElement;
  private readonly status: HTMLSelectElement;
  private readonly host: HTMLSelectElement;
  private readonly shown: HTMLSpanElement;
  private readonly search: HTMLInputElement;
  private hostsKey = '';
  // a host asked for (by the URL) before the data listing it arrived
  private wantedHost = '';

  constructor(onChange: (patch: Partial<Filter>) => void) {
    const search: HTMLInputElement = h('input', {
      type: 'search',
      id: 'search',
      placeholder: 'Name, host, reason or badge',
      autocomplete: 'off',
      on: { input: () => onChange({ search: search.value }) },
    });
    this.status = h(
      'select',
      { id: 'status-filter', on: { change: () => onChange({ status: this.status.value as AgentStatus | '' }) } },
      h('option', { value: '' }, 'All statuses'),
      ...AGENT_STATUSES.map((status) => h('option', { value: status }, status)),
    );
    this.host = h(
      'select',
      {
        id: 'host-filter',
        on: {
          change: () => {
            this.wantedHost = this.host.value;
            onChange({ host: this.host.value });
          },
        },
      },
      h('option', { value: '' }, 'All hosts'),
    );
    this.shown = h('span', { class: 'shown', role: 'status' });
    this.search = search;
    this.el = h(
      'div',
      { class: 'filters' },
      h('label', { for: 'search' }, 'Search'),
      search,
      h('label', { for: 'status-filter' }, 'Status'),
      this.status,
      h('label', { for: 'host-filter' }, 'Host'),
      this.host,
      this.shown,
    );
  }

  /** Offers the hosts present in the data; keeps the current choice. */
  setHosts(hosts: (string | null)[]): void {
    const names = [...new Set(hosts.map((host) => host ?? NO_HOST))].sort();
    const key = names.join('\n');
    if (key === this.hostsKey) return;
    this.hostsKey = key;
    const current = this.wantedHost || this.host.value;
    replace(
      this.host,
      h('option', { value: '' }, 'All hosts'),
      ...names.map((name) => h('option', { value: name }, name === NO_HOST ? '(no host)' : name)),
    );
    this.host.value = names.includes(current) ? current : '';
  }

  setStatus(status: AgentStatus | ''): void {
    this.status.value = status;
  }

  /** Shows the filters a URL asked for (the table is told separately). */
  setAll(filter: { search: string; host: string; status: AgentStatus | '' }): void {
    if (this.search.value !== filter.search) this.search.value = filter.search;
    this.wantedHost = filter.host;
    if ([...this.host.options].some((option) => option.value === filter.host)) this.host.value = filter.host;
    this.status.value = filter.status;
  }

  focusSearch(): void {
    this.search.focus();
    this.search.select();
  }

  setShown(shown: number, total: number): void {
    setText(this.shown, shown === total ? `${total} agent${total === 1 ? '' : 's'}` : `${shown} of ${total} agents shown`);
  }
}
