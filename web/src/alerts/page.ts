// The Alerts page (#/alerts): channels (added, edited, tested and deleted here; secrets write-only)
// with their last delivery, pauses ("Pause alerts" for an agent or a host, and Resume), and the
// delivery log with failures first, each delivery with its attempts. It reads through the operator
// functions, which return channel secrets masked; it polls while open.
import type { SupabaseClient } from '@supabase/supabase-js';
import type { AlertChannelRow as ChannelRow, AlertDeliveryRow as DeliveryRow, AlertPauseRow as PauseRow } from '../../../shared/alerts.ts';
import { h, replace } from '../dom.ts';
import type { Notices } from '../notices.ts';
import { pauseRequest } from './pause-links.ts';
import { ChannelForm, type ChannelDraft } from './channel-form.ts';
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

/** One attempt to send a delivery, as operator_alert_attempts returns it. */
interface AttemptRow {
  delivery_id: number;
  at: string;
  duration_ms: number | null;
  http_status: number | null;
  error: string | null;
  ok: boolean;
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
  private readonly channelForm: ChannelForm;
  private readonly addChannel: HTMLButtonElement;
  /** the delivery rows whose attempts are open, kept open across polls */
  private readonly openAttempts = new Set<number>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private opened = false;

  constructor(
    private readonly client: SupabaseClient,
    private readonly notices: Notices,
    /** a pause was made or ended here: the banner and the agents' pages read them again */
    private readonly pausesChanged: () => void = () => {},
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
    this.channelForm = new ChannelForm(
      (draft, isNew) => this.saveChannel(draft, isNew),
      () => (this.addChannel.hidden = false),
    );
    this.addChannel = h(
      'button',
      {
        type: 'button',
        class: 'btn',
        on: {
          click: () => {
            this.addChannel.hidden = true;
            this.channelForm.open();
          },
        },
      },
      'Add channel',
    );
    this.el = h(
      'section',
      { class: 'alerts', 'aria-labelledby': 'alerts-title', hidden: true },
      h('a', { href: '#/', class: 'back' }, '← All agents'),
      h('h2', { id: 'alerts-title' }, 'Alerts'),
      this.problem,
      h('h3', null, 'Channels'),
      this.channels,
      this.addChannel,
      this.channelForm.el,
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
      const attempts = log.length ? await this.rpc<AttemptRow[]>('operator_alert_attempts', { p_delivery_ids: log.map((d) => d.id) }) : [];
      this.paintLog(log, attempts);
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
        h(
          'p',
          { class: 'muted' },
          'No channels yet: add one here, or with agent-status alerts channel add NAME --kind webhook --endpoint URL.',
        ),
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
              h(
                'td',
                { class: 'channel-actions' },
                h('button', { type: 'button', class: 'btn', on: { click: () => void this.test(c.name) } }, 'Send test'),
                h('button', { type: 'button', class: 'btn', on: { click: () => this.edit(c) } }, 'Edit'),
                h('button', { type: 'button', class: 'btn btn-danger', on: { click: () => void this.remove(c.name) } }, 'Delete'),
              ),
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

  private paintLog(rows: DeliveryRow[], attempts: AttemptRow[]) {
    const byDelivery = new Map<number, AttemptRow[]>();
    for (const attempt of attempts) byDelivery.set(attempt.delivery_id, [...(byDelivery.get(attempt.delivery_id) ?? []), attempt]);
    const tries = (d: DeliveryRow) => {
      const list = byDelivery.get(d.id) ?? [];
      if (!list.length) return String(d.attempts);
      const details = h(
        'details',
        { class: 'attempts', open: this.openAttempts.has(d.id) },
        h('summary', null, `${d.attempts}`),
        h(
          'ol',
          null,
          ...list.map((a) =>
            h(
              'li',
              { class: a.ok ? 'ok' : 'failed' },
              formatTimestamp(a.at),
              ` · ${a.http_status ? `HTTP ${a.http_status}` : 'no answer'}`,
              a.duration_ms !== null ? ` · ${a.duration_ms} ms` : '',
              a.error ? h('span', { class: 'attempt-error' }, ` · ${a.error}`) : '',
            ),
          ),
        ),
      );
      details.addEventListener('toggle', () => (details.open ? this.openAttempts.add(d.id) : this.openAttempts.delete(d.id)));
      return details;
    };
    replace(
      this.log,
      rows.length
        ? h(
            'table',
            { class: 'alerts-table' },
            h(
              'thead',
              null,
              h('tr', null, ...['Status', 'Channel', 'Notice', 'Attempts', 'Queued', 'Delivered', 'Result'].map((t) => h('th', null, t))),
            ),
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
                  h('td', { class: 'num' }, tries(d)),
                  h('td', null, formatTimestamp(d.created_at)),
                  h('td', null, d.status === 'delivered' && d.finished_at ? formatTimestamp(d.finished_at) : '–'),
                  h('td', { class: 'result' }, d.last_error ?? (d.last_http_status ? `HTTP ${d.last_http_status}` : '')),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No notifications sent yet.'),
    );
  }

  private edit(channel: ChannelRow) {
    this.addChannel.hidden = true;
    this.channelForm.open(channel);
  }

  private async saveChannel(draft: ChannelDraft, isNew: boolean) {
    await this.rpc('alert_channel_save', {
      p_name: draft.name,
      p_kind: draft.kind,
      p_endpoint: draft.endpoint,
      p_secret: draft.secret,
      p_settings: draft.settings,
      p_rules: draft.rules,
    });
    this.addChannel.hidden = false;
    this.notices.show(`${isNew ? 'Added' : 'Saved'} channel ${draft.name}. Send a test to check it.`);
    void this.refresh();
  }

  private async remove(channel: string) {
    if (!window.confirm(`Delete channel ${channel}? Its delivery log goes with it.`)) return;
    try {
      await this.rpc('alert_channel_remove', { p_name: channel });
      this.notices.show(`Deleted channel ${channel}.`);
      void this.refresh();
    } catch (error) {
      this.notices.show(`Could not delete ${channel}: ${(error as Error).message}`, 'error');
    }
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
      this.pausesChanged();
      void this.refresh();
    } catch (error) {
      this.notices.show(`Could not pause alerts for ${target}: ${(error as Error).message}`, 'error');
    }
  }

  private async resume(p: PauseRow) {
    try {
      await this.rpc('alert_resume', { p_agent_name: p.agent_name, p_host: p.agent_name ? null : p.host });
      this.notices.show(`Alerts resumed for ${p.agent_name ?? `host ${p.host}`}.`);
      this.pausesChanged();
      void this.refresh();
    } catch (error) {
      this.notices.show(`Could not resume: ${(error as Error).message}`, 'error');
    }
  }
}
