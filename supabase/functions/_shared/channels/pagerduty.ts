// PagerDuty Events API v2: POST to /v2/enqueue (events.pagerduty.com, or events.eu.pagerduty.com).
// A down notice triggers and its recovery resolves the same alert: dedup_key is the notice's incident
// key, one per agent (or host) incident. The routing (integration) key is the channel's secret.
import { type Channel, jsonRequest } from './base.ts';

const SEVERITY = { critical: 'critical', warning: 'warning', info: 'info', resolved: 'info' } as const;

export const pagerduty: Channel = (notice, config) => {
  const base = { routing_key: config.secret, dedup_key: notice.incident.slice(0, 255) };
  if (notice.kind === 'up' || notice.kind === 'host_up') return jsonRequest(config.endpoint, { ...base, event_action: 'resolve' });
  return jsonRequest(config.endpoint, {
    ...base,
    event_action: 'trigger',
    payload: {
      summary: notice.title.slice(0, 1024),
      source: notice.host ?? notice.agent ?? 'agent-status',
      severity: SEVERITY[notice.severity],
      timestamp: notice.at,
      component: notice.agent,
      group: notice.host,
      class: notice.kind,
      custom_details: { text: notice.text, status: notice.status, previous_status: notice.previous_status, agents: notice.agents },
    },
  });
};
