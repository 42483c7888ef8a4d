// The Alerts page (#/alerts): channels with a "Send test" button and their last delivery, pauses
// ("Pause alerts" for an agent or a host, and Resume), and the delivery log with failures first. It
// reads through the operator functions, which return channel secrets masked; it polls while open.
import type { SupabaseClient } from '@supabase/supabase-js';
import type { AlertChannelRow as ChannelRow, AlertDeliveryRow as DeliveryRow, AlertPauseRow as PauseRow } from '../../../shared/alerts.ts';
import { h, replace } from '../dom.ts';
import type { Notices } from '../notices.ts';
import { pauseRequest } from './pause-links.ts';
import { formatTimestamp } from '../time.ts';
import './alerts.css';

const POLL_MS = 5000;
const DURATIONS: [string, number | null][] = [
  ['1 hour', 3600],
  ['4 hours', 4 * 3600],
  ['1 day', 86400],
  ['1 week', 7 * 86400],
  ['until resumed', null],
];

function rules(c: ChannelRow): string {
  const who = [...(c.hosts ?? []).map((host) => `host ${host}`), ...(c.agents ?? [])].join(', ') || 'all agents';
  const extra = [
    c.grace_s ? `grace ${c.grace_s} s` : '',
    c.reminder_s ? `remind every ${c.reminder_s} s` : '',
    c.flap_threshold ? '' : 'no flap folding',
  ]
    .filter(Boolean)
    .join(', ');
  return `${c.flips.join(', ')} · ${who}${extra ? ` · ${extra}` : ''}`;
}

function result(status: string | null, httpStatus: number | null, error: string | null): string {
  if (!status) return 'never sent';
  // a failure's message already starts with its HTTP status
  return [status, error ?? (httpStatus ? `HTTP ${httpStatus}` : '')].filter(Boolean).join(' · ');
}

export class AlertsPage {
  readonly el: HTMLElement;
  private readonly channels = h('div', { class: 'alerts-channels' });
  private readonly pauses = h('div', { class: 'alerts-pauses' });
  private readonly log = h('div', { class: 'alerts-log' });
  private readonly targets = h('datalist', { id: 'alert-targets' });
  private readonly problem = h('p', { class: 'notice notice-error', role: 'alert', hidden: true });
  private readonly scope: HTMLSelectElement;
  private readonly target: HTMLInputElement;
  private readonly reason: HTMLInputElement;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private opened = false;

  constructor(
    private readonly client: SupabaseClient,
    private readonly notices: Notices,
  ) {
    const scope = h(
      'select',
      { name: 'scope', 'aria-label': 'Pause scope' },
      h('option', { value: 'agent' }, 'agent'),
      h('option', { value: 'host' }, 'host'),
    );
    const target = h('input', {
      name: 'target',
      list: 'alert-targets',
      required: true,
      placeholder: 'name',
      'aria-label': 'Pause target',
    });
    const duration = h(
      'select',
      { name: 'duration', 'aria-label': 'Pause length' },
      ...DURATIONS.map(([label, seconds]) => h('option', { value: seconds === null ? '' : String(seconds) }, label)),
    );
    const reason = h('input', {
      name: 'reason',
      placeholder: 'reason (maintenance, deploy...)',
      maxlength: '500',
      'aria-label': 'Pause note',
    });
    const form = h(
      'form',
      { class: 'alerts-pause-form' },
      h('span', null, 'Pause alerts for'),
      scope,
      target,
      duration,
      reason,
      this.targets,
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Pause alerts'),
    );
    this.scope = scope;
    this.target = target;
    this.reason = reason;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.pause(
        scope.value as 'agent' | 'host',
        target.value.trim(),
        duration.value ? Number(duration.value) : null,
        reason.value.trim(),
      );
    });
    this.el = h(
      'section',
      { class: 'alerts', 'aria-labelledby': 'alerts-title', hidden: true },
      h('a', { href: '#/', class: 'back' }, '← All agents'),
      h('h2', { id: 'alerts-title' }, 'Alerts'),
      this.problem,
      h('h3', null, 'Channels'),
      this.channels,
      h('h3', null, 'Paused'),
      form,
      this.pauses,
      h('h3', null, 'Delivery log'),
      this.log,
    );
  }

  /** Shows the page; `hash` may ask for the pause form to be filled in (pause-links.ts). */
  open(hash = ''): void {
    this.el.hidden = false;
    const prefill = pauseRequest(hash);
    if (prefill) {
      this.scope.value = prefill.scope;
      this.target.value = prefill.target;
      this.reason.focus();
    }
    if (this.opened) return;
    this.opened = true;
    void this.refresh();
  }

  close(): void {
    this.el.hidden = true;
    this.opened = false;
    clearTimeout(this.timer);
  }

  private async rpc<T>(fn: string, args: Record<string, unknown> = {}): Promise<T> {
    const { data, error } = await this.client.rpc(fn, args);
    if (error) throw new Error(`${error.message}${error.hint ? ` (${error.hint})` : ''}`);
    return data as T;
  }

  async refresh(): Promise<void> {
    clearTimeout(this.timer);
    try {
      const [channels, pauses, log, agents] = await Promise.all([
        this.rpc<ChannelRow[]>('operator_alert_channels'),
        this.rpc<PauseRow[]>('operator_alert_pauses'),
        this.rpc<DeliveryRow[]>('operator_alert_deliveries', { p_limit: 100 }),
        this.client.from('agent_status').select('agent_name,host'),
      ]);
      this.problem.hidden = true;
      this.paintChannels(channels);
      this.paintPauses(pauses);
      this.paintLog(log);
      const names = new Set<string>();
      for (const a of agents.data ?? []) {
        names.add(a.agent_name);
        if (a.host) names.add(a.host);
      }
      replace(this.targets, ...[...names].sort().map((name) => h('option', { value: name })));
    } catch (error) {
      this.problem.textContent = `Cannot read the alerts: ${(error as Error).message}`;
      this.problem.hidden = false;
    }
    if (this.opened) this.timer = setTimeout(() => void this.refresh(), POLL_MS);
  }

  private paintChannels(rows: ChannelRow[]) {
    if (!rows.length) {
      replace(
        this.channels,
        h('p', { class: 'muted' }, 'No channels yet. Add one with: agent-status alerts channel add NAME --kind webhook --endpoint URL'),
      );
      return;
    }
    replace(
      this.channels,
      h(
        'table',
        { class: 'alerts-table' },
        h('thead', null, h('tr', null, ...['Channel', 'Kind', 'Endpoint', 'Rules', 'Last delivery', ''].map((t) => h('th', null, t)))),
        h(
          'tbody',
          null,
          ...rows.map((c) =>
            h(
              'tr',
              { 'data-channel': c.name },
              h('td', { class: 'name' }, c.enabled ? c.name : `${c.name} (off)`),
              h('td', null, c.kind),
              h('td', { class: 'mono' }, c.endpoint, c.secret ? h('span', { class: 'muted' }, ` · secret ${c.secret}`) : null),
              h('td', null, rules(c)),
              h(
                'td',
                { class: `last status-${c.last_status ?? 'none'}` },
                result(c.last_status, c.last_http_status, c.last_error),
                c.last_at ? h('span', { class: 'muted' }, ` · ${c.last_kind} ${formatTimestamp(c.last_at)}`) : null,
              ),
              h('td', null, h('button', { type: 'button', class: 'btn', on: { click: () => void this.test(c.name) } }, 'Send test')),
            ),
          ),
        ),
      ),
    );
  }

  private paintPauses(rows: PauseRow[]) {
    replace(
      this.pauses,
      rows.length
        ? h(
            'ul',
            { class: 'alerts-paused' },
            ...rows.map((p) =>
              h(
                'li',
                null,
                h('strong', null, p.agent_name ?? `host ${p.host}`),
                ` paused ${p.until ? `until ${formatTimestamp(p.until)}` : 'until resumed'}`,
                p.reason ? `: ${p.reason}` : '',
                h('span', { class: 'muted' }, p.created_by ? ` (${p.created_by})` : ''),
                ' ',
                h('button', { type: 'button', class: 'btn', on: { click: () => void this.resume(p) } }, 'Resume'),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'Nothing is paused.'),
    );
  }

  private paintLog(rows: DeliveryRow[]) {
    replace(
      this.log,
      rows.length
        ? h(
            'table',
            { class: 'alerts-table' },
            h('thead', null, h('tr', null, ...['Status', 'Channel', 'Notice', 'Tries', 'Queued', 'Result'].map((t) => h('th', null, t)))),
            h(
              'tbody',
              null,
              ...rows.map((d) =>
                h(
                  'tr',
                  { class: `status-${d.status}` },
                  h('td', null, h('span', { class: `delivery delivery-${d.status}` }, d.status)),
                  h('td', null, d.channel),
                  h('td', null, d.title),
                  h('td', { class: 'num' }, String(d.attempts)),
                  h('td', null, formatTimestamp(d.created_at)),
                  h('td', { class: 'result' }, d.last_error ?? (d.last_http_status ? `HTTP ${d.last_http_status}` : '')),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No notifications sent yet.'),
    );
  }

  private async test(channel: string) {
    try {
      await this.rpc('alert_channel_test', { p_name: channel });
      this.notices.show(`Test notice queued on ${channel}; its result shows here in a few seconds.`);
      setTimeout(() => void this.refresh(), 1500);
    } catch (error) {
      this.notices.show(`Could not queue a test on ${channel}: ${(error as Error).message}`, 'error');
    }
  }

  private async pause(scope: 'agent' | 'host', target: string, seconds: number | null, reason: string) {
    try {
      await this.rpc('alert_pause', {
        p_agent_name: scope === 'agent' ? target : null,
        p_host: scope === 'host' ? target : null,
        p_until: seconds === null ? null : new Date(Date.now() + seconds * 1000).toISOString(),
        p_reason: reason || null,
      });
      this.notices.show(`Alerts paused for ${scope === 'host' ? `host ${target}` : target}.`);
      void this.refresh();
    } catch (error) {
      this.notices.show(`Could not pause alerts for ${target}: ${(error as Error).message}`, 'error');
    }
  }

  private async resume(p: PauseRow) {
    try {
      await this.rpc('alert_resume', { p_agent_name: p.agent_name, p_host: p.agent_name ? null : p.host });
      this.notices.show(`Alerts resumed for ${p.agent_name ?? `host ${p.host}`}.`);
      void this.refresh();
    } catch (error) {
      this.notices.show(`Could not resume: ${(error as Error).message}`, 'error');
    }
  }
}
