// Adding and editing a channel on the Alerts page, as healthchecks and Uptime Kuma do it on theirs:
// name, kind, endpoint, secret, per-kind settings and the rules, saved together by one
// alert_channel_save call (one transaction: a refused rule saves nothing). The secret is write-only: the form never holds the stored one (the page only
// ever receives it masked); empty keeps it, and "Remove the secret" clears it.
import { ALERT_FLIPS, CHANNEL_KINDS, type AlertChannelRow, type ChannelKind } from '../../../shared/alerts.ts';
import { h, setText } from '../dom.ts';

/** What the form saves: the channel and its rules. */
export interface ChannelDraft {
  name: string;
  kind: ChannelKind;
  /** null: keep the stored one (or the kind's default endpoint) */
  endpoint: string | null;
  /** null: keep the stored one; '': remove it */
  secret: string | null;
  settings: Record<string, unknown>;
  rules: {
    enabled: boolean;
    flips: string[];
    hosts: string[] | null;
    agents: string[] | null;
    grace_s: number;
    reminder_s: number | null;
    flap_threshold: number;
  };
}

const ENDPOINT_HINTS: Record<ChannelKind, string> = {
  webhook: 'https://example.com/hooks/agent-status',
  slack: 'https://hooks.slack.com/services/…',
  discord: 'https://discord.com/api/webhooks/…',
  telegram: 'empty: https://api.telegram.org',
  ntfy: 'empty: https://ntfy.sh',
  email: 'empty: the provider’s API',
  pagerduty: 'empty: https://events.pagerduty.com/v2/enqueue',
};

const SECRET_HINTS: Record<ChannelKind, string> = {
  webhook: 'HMAC signing secret (optional)',
  slack: 'not used (the URL is the secret)',
  discord: 'not used (the URL is the secret)',
  telegram: 'bot token',
  ntfy: 'access token (optional)',
  email: 'API key',
  pagerduty: 'routing key',
};

const list = (text: string): string[] | null => {
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  return items.length ? items : null;
};

export class ChannelForm {
  readonly el: HTMLFormElement;
  private readonly title = h('h4', null, 'Add a channel');
  private readonly name = h('input', { id: 'channel-name', required: true, maxlength: '100', autocomplete: 'off' });
  private readonly kind = h('select', { id: 'channel-kind' }, ...CHANNEL_KINDS.map((kind) => h('option', { value: kind }, kind)));
  private readonly endpoint = h('input', { id: 'channel-endpoint', type: 'url', autocomplete: 'off' });
  private readonly secret = h('input', { id: 'channel-secret', type: 'password', autocomplete: 'new-password' });
  private readonly secretNote = h('span', { class: 'muted small' });
  private readonly removeSecret = h('input', { id: 'channel-remove-secret', type: 'checkbox' });
  private readonly removeSecretLabel = h('label', { class: 'inline' }, this.removeSecret, ' Remove the stored secret');
  private readonly settings = h('input', { id: 'channel-settings', autocomplete: 'off', placeholder: '{"chat_id": "…"}' });
  private readonly flips = ALERT_FLIPS.map((flip) => h('input', { type: 'checkbox', value: flip, checked: true }));
  private readonly hosts = h('input', { id: 'channel-hosts', placeholder: 'all hosts', autocomplete: 'off' });
  private readonly agents = h('input', { id: 'channel-agents', placeholder: 'all agents (or scraper-*, bot-?)', autocomplete: 'off' });
  private readonly grace = h('input', { id: 'channel-grace', type: 'number', min: '0', max: '86400', value: '0' });
  private readonly reminder = h('input', { id: 'channel-reminder', type: 'number', min: '60', max: '604800', placeholder: 'never' });
  private readonly flap = h('input', { id: 'channel-flap', type: 'number', min: '0', max: '100', value: '3' });
  private readonly enabled = h('input', { id: 'channel-enabled', type: 'checkbox', checked: true });
  private readonly state = h('p', { class: 'muted small', role: 'status' });
  private editing: AlertChannelRow | undefined;

  constructor(
    private readonly save: (draft: ChannelDraft, isNew: boolean) => Promise<void>,
    private readonly cancelled: () => void,
  ) {
    const field = (label: string, input: HTMLElement, ...after: (HTMLElement | string)[]) =>
      h('div', { class: 'field' }, h('label', { for: input.id }, label), input, ...after);
    this.kind.addEventListener('change', () => this.paintHints());
    this.el = h(
      'form',
      { class: 'channel-form', hidden: true, 'aria-labelledby': 'channel-form-title' },
      this.title,
      h(
        'div',
        { class: 'fields' },
        field('Name', this.name),
        field('Kind', this.kind),
        field('Endpoint', this.endpoint),
        field('Secret', this.secret, this.secretNote, this.removeSecretLabel),
        field('Settings (JSON)', this.settings),
      ),
      h(
        'fieldset',
        { class: 'fields' },
        h('legend', null, 'Rules'),
        h(
          'div',
          { class: 'field' },
          h('span', { class: 'label' }, 'Tell about'),
          h(
            'span',
            { class: 'flips' },
            ...this.flips.map((box) => h('label', { class: 'inline' }, box, ` ${box.value.replace('_', ' ')}`)),
          ),
        ),
        field('Hosts', this.hosts),
        field('Agents', this.agents),
        field('Grace (s)', this.grace),
        field('Remind every (s)', this.reminder),
        field('Fold flapping after (flips)', this.flap),
        h('label', { class: 'inline' }, this.enabled, ' Enabled'),
      ),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save channel'),
        h('button', { type: 'button', class: 'btn', on: { click: () => this.close() } }, 'Cancel'),
        this.state,
      ),
    );
    this.el.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.submit();
    });
    this.el.addEventListener('input', () => setText(this.state, ''));
  }

  /** Opens the form empty (a new channel) or filled with a channel's stored values, never its secret. */
  open(channel?: AlertChannelRow): void {
    this.editing = channel;
    this.el.reset();
    setText(this.title, channel ? `Edit ${channel.name}` : 'Add a channel');
    this.el.setAttribute('aria-label', channel ? `Edit ${channel.name}` : 'Add a channel');
    this.name.value = channel?.name ?? '';
    this.name.readOnly = channel !== undefined;
    this.kind.value = channel?.kind ?? 'webhook';
    // the endpoint as stored is shown masked for the kinds whose URL is the secret: empty keeps it
    this.endpoint.value = '';
    this.endpoint.placeholder = channel ? `${channel.endpoint} (empty keeps it)` : ENDPOINT_HINTS[this.kind.value as ChannelKind];
    this.secret.value = '';
    this.removeSecret.checked = false;
    this.removeSecretLabel.hidden = !channel?.secret;
    this.settings.value = channel && Object.keys(channel.settings).length ? JSON.stringify(channel.settings) : '';
    for (const box of this.flips) box.checked = channel ? channel.flips.includes(box.value as never) : true;
    this.hosts.value = channel?.hosts?.join(', ') ?? '';
    this.agents.value = channel?.agents?.join(', ') ?? '';
    this.grace.value = String(channel?.grace_s ?? 0);
    this.reminder.value = channel?.reminder_s === null || channel === undefined ? '' : String(channel.reminder_s);
    this.flap.value = String(channel?.flap_threshold ?? 3);
    this.enabled.checked = channel?.enabled ?? true;
    setText(this.state, '');
    this.paintHints();
    this.el.hidden = false;
    (channel ? this.endpoint : this.name).focus();
  }

  close(): void {
    this.el.hidden = true;
    this.editing = undefined;
    this.cancelled();
  }

  get isOpen(): boolean {
    return !this.el.hidden;
  }

  private paintHints() {
    const kind = this.kind.value as ChannelKind;
    if (!this.editing || this.editing.kind !== kind) this.endpoint.placeholder = ENDPOINT_HINTS[kind];
    this.secret.placeholder = SECRET_HINTS[kind];
    setText(
      this.secretNote,
      this.editing?.secret && this.editing.kind === kind
        ? `stored: ${this.editing.secret} (write-only: empty keeps it)`
        : 'write-only: never shown again',
    );
  }

  private async submit() {
    let settings: Record<string, unknown> = {};
    if (this.settings.value.trim()) {
      try {
        settings = JSON.parse(this.settings.value);
      } catch {
        setText(this.state, 'Settings must be a JSON object, e.g. {"chat_id": "12345"}.');
        return;
      }
      if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
        setText(this.state, 'Settings must be a JSON object, e.g. {"chat_id": "12345"}.');
        return;
      }
    }
    const draft: ChannelDraft = {
      name: this.name.value.trim(),
      kind: this.kind.value as ChannelKind,
      endpoint: this.endpoint.value.trim() || null,
      secret: this.removeSecret.checked ? '' : this.secret.value || null,
      settings,
      rules: {
        enabled: this.enabled.checked,
        flips: this.flips.filter((box) => box.checked).map((box) => box.value),
        hosts: list(this.hosts.value),
        agents: list(this.agents.value),
        grace_s: Number(this.grace.value || 0),
        reminder_s: this.reminder.value ? Number(this.reminder.value) : null,
        flap_threshold: Number(this.flap.value || 0),
      },
    };
    setText(this.state, 'saving…');
    try {
      await this.save(draft, this.editing === undefined);
      this.secret.value = '';
      this.el.hidden = true;
      this.editing = undefined;
    } catch (error) {
      setText(this.state, (error as Error).message);
    }
  }
}
