// PagerDuty Events API v2: POST to /v2/enqueue (events.pagerduty.com, or events.eu.pagerduty.com).
// A down notice triggers and its recovery resolves the same alert: dedup_key is the notice's incident
// key, one per agent (or host) incident. The routing (integration) key is the channel's secret.
// "Send test" is a change event (/v2/change/enqueue, same routing key): PagerDuty shows it and
// opens nothing, where a trigger opened a real incident nobody would ever resolve (issue 19).
import { type Channel, jsonRequest } from './base.ts';

const SEVERITY = { critical: 'critical', warning: 'warning', info: 'info', resolved: 'info' } as const;

export const pagerduty: Channel = (notice, config) => {
  const base = { routing_key: config.secret, dedup_key: notice.incident.slice(0, 255) };
  if (notice.kind === 'up' || notice.kind === 'host_up') return jsonRequest(config.endpoint, { ...base, event_action: 'resolve' });
  if (notice.kind === 'test') {
    return jsonRequest(config.endpoint.replace(/\/v2\/enqueue\/?$/, '/v2/change/enqueue'), {
      routing_key: config.secret,
      payload: { summary: `${notice.title}: ${notice.text}`.slice(0, 1024), timestamp: notice.at, source: 'agent-status' },
    });
  }
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
