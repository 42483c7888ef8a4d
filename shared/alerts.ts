// Alerts, as TypeScript: the channel kinds, the kinds of notice and the outbox statuses the database
// defines (supabase/schemas/70_alerts.sql; tests/alerts/definitions.test.ts keeps the two
// equal), the neutral notice every channel lays out, and the webhook signature scheme.

/** Where notifications can go. */
export const CHANNEL_KINDS = ['webhook', 'slack', 'discord', 'telegram', 'ntfy', 'email', 'pagerduty'] as const;
export type ChannelKind = (typeof CHANNEL_KINDS)[number];

/** The down flips a channel can be told about; recovery is always told once a down notice went out. */
export const ALERT_FLIPS = ['stale', 'error', 'crash_loop', 'host'] as const;
export type AlertFlip = (typeof ALERT_FLIPS)[number];

/** What a notice is about. */
export const NOTICE_KINDS = ['down', 'up', 'flapping', 'reminder', 'host_down', 'host_up', 'test'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/** Where a delivery is in the outbox. */
export const DELIVERY_STATUSES = ['pending', 'sending', 'delivered', 'dead', 'cancelled'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** A channel as operator_alert_channels returns it: the secret masked, rules and the last delivery. */
export interface AlertChannelRow {
  name: string;
  kind: ChannelKind;
  endpoint: string;
  secret: string | null;
  settings: Record<string, unknown>;
  enabled: boolean;
  flips: AlertFlip[];
  hosts: string[] | null;
  agents: string[] | null;
  grace_s: number;
  reminder_s: number | null;
  flap_threshold: number;
  flap_window_s: number;
  last_status: DeliveryStatus | null;
  last_kind: NoticeKind | null;
  last_at: string | null;
  last_http_status: number | null;
  last_error: string | null;
}

/** A pause of an agent's or a host's alerts, as operator_alert_pauses returns it. */
export interface AlertPauseRow {
  id: number;
  agent_name: string | null;
  host: string | null;
  until: string | null;
  reason: string | null;
  created_by: string | null;
}

/** One delivery of the outbox, as operator_alert_deliveries returns it. */
export interface AlertDeliveryRow {
  id: number;
  channel: string;
  kind: NoticeKind;
  status: DeliveryStatus;
  title: string;
  attempts: number;
  created_at: string;
  finished_at: string | null;
  last_http_status: number | null;
  last_error: string | null;
}

/** The neutral "what happened" object (agent_private.alert_notice); channels build their payloads from it. */
export interface Notice {
  kind: NoticeKind;
  severity: 'critical' | 'warning' | 'info' | 'resolved';
  title: string;
  text?: string;
  agent?: string;
  host?: string;
  status?: string;
  previous_status?: string;
  /** agents on the host, for host notices */
  agents?: number;
  /** when it happened (ISO 8601, the database's clock) */
  at: string;
  /** one key per agent or host incident: the down notice and its recovery share it (PagerDuty's dedup_key) */
  incident: string;
  delivery_id: number;
  channel: string;
  after_pause?: boolean;
}

/**
 * The webhook channel signs every request. Receivers recompute HMAC-SHA256, keyed with the channel's
 * secret, over `${timestamp}.${body}` (timestamp: the X-Agent-Status-Timestamp header, Unix seconds;
 * body: the raw request body), hex-encode it and compare it with the X-Agent-Status-Signature header
 * after its `v1=` prefix, in constant time, refusing timestamps more than 5 minutes old.
 */
export const WEBHOOK_HEADERS = {
  signature: 'x-agent-status-signature',
  timestamp: 'x-agent-status-timestamp',
  delivery: 'x-agent-status-delivery',
} as const;

/** The text the webhook signature covers. */
export function signedText(timestamp: string, body: string): string {
  return `${timestamp}.${body}`;
}
