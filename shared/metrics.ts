// The Prometheus text exposition format (version 0.0.4) of what public.agent_metrics answers: one
// HELP and TYPE per family, then its samples. The SQL function decides the figures (live status with
// the deadline applied, availability from the history); this only writes them down.
import { AGENT_STATUSES, type AgentStatus, type RunnerStatus } from './status.ts';

/** public.agent_metrics(p_token) */
export interface MetricsSnapshot {
  agents: {
    name: string;
    host: string | null;
    status: AgentStatus;
    /** null while nobody reported it (the column's default is no health) */
    health: number | null;
    /** null before the first heartbeat */
    seconds_since_heartbeat: number | null;
    restarts_total: number;
    /** 0..100 over the last 24 h; null when nothing is known of that time */
    up_percent_24h: number | null;
  }[];
  runners: { host: string; status: RunnerStatus }[];
  /** alert deliveries in the outbox (kept as long as their flips), by channel and outcome */
  deliveries: { channel: string; kind: string; status: string; count: number }[];
}

/** What a scrape answers with, as Prometheus asks for it. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string | null>;

// Label values escape backslash, double quote and line feed; nothing else (the format's rule).
const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function sample(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([key, label]) => `${key}="${escapeLabel(label ?? '')}"`);
  return `${name}{${pairs.join(',')}} ${Number.isFinite(value) ? value : 'NaN'}`;
}

function family(name: string, type: 'gauge' | 'counter', help: string, samples: string[]): string[] {
  return [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`, ...samples];
}

/** The whole scrape answer. */
export function formatMetrics(snapshot: MetricsSnapshot): string {
  const agent = (a: MetricsSnapshot['agents'][number]) => ({ agent: a.name, host: a.host });
  const lines = [
    ...family(
      'agent_status_status',
      'gauge',
      `1 for the agent's current status (${AGENT_STATUSES.join(', ')}), 0 for the others; stale applied at read time`,
      snapshot.agents.flatMap((a) =>
        AGENT_STATUSES.map((status) => sample('agent_status_status', { ...agent(a), status }, a.status === status ? 1 : 0)),
      ),
    ),
    ...family(
      'agent_status_health',
      'gauge',
      'Health the agent reported, 0 to 100 (absent while it has reported none since its process started)',
      snapshot.agents.flatMap((a) => (a.health === null ? [] : [sample('agent_status_health', agent(a), a.health)])),
    ),
    ...family(
      'agent_status_seconds_since_heartbeat',
      'gauge',
      'Seconds since the agent last heartbeat, by the database clock (absent before the first one)',
      snapshot.agents.flatMap((a) =>
        a.seconds_since_heartbeat === null ? [] : [sample('agent_status_seconds_since_heartbeat', agent(a), a.seconds_since_heartbeat)],
      ),
    ),
    ...family(
      'agent_status_restarts_total',
      'counter',
      'Restarts after a crash, since the agent was registered',
      snapshot.agents.map((a) => sample('agent_status_restarts_total', agent(a), a.restarts_total)),
    ),
    ...family(
      'agent_status_availability_24h_ratio',
      'gauge',
      'Share of the last 24 h the agent was running or warning, of the time its status was known (absent when none was)',
      snapshot.agents.flatMap((a) =>
        a.up_percent_24h === null ? [] : [sample('agent_status_availability_24h_ratio', agent(a), a.up_percent_24h / 100)],
      ),
    ),
    ...family(
      'agent_status_runner_up',
      'gauge',
      '1 while the host runner is online, 0 when it is silent, offline or stopped',
      snapshot.runners.map((r) => sample('agent_status_runner_up', { host: r.host, status: r.status }, r.status === 'online' ? 1 : 0)),
    ),
    ...family(
      'agent_status_alert_deliveries',
      'gauge',
      'Alert deliveries in the outbox by channel and outcome (pending, sending, delivered, dead, cancelled); pruned with their history',
      snapshot.deliveries.map((d) =>
        sample('agent_status_alert_deliveries', { channel: d.channel, kind: d.kind, outcome: d.status }, d.count),
      ),
    ),
  ];
  return `${lines.join('\n')}\n`;
}
