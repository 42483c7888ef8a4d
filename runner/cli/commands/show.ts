// One agent, as supervisorctl status <name> and pm2 show do: `status <agent>` (alias `show`) prints its
// state, process, restarts, timeouts, alert pause and latest history; `history <agent>` pages its
// history (crash loops folded, as the dashboard shows it); `reset <agent>` forgets its restart count
// (pm2 reset), recorded as an event.
import type { Command } from 'commander';
import { action, integerIn, subcommand } from './action.ts';
import { connect, connectionOptions, type Api, type ConnectionFlags } from './connection.ts';
import { findAgent, type LiveAgent } from './agents.ts';
import type { AlertPauseRow } from '../../../shared/alerts.ts';
import { ago, oneLine, paintStatus, painter, printJson, span } from './output.ts';
import { HEALTH_NOT_REPORTED_WHY, reportedHealth } from '../../../shared/rows.ts';

/** A history row as agent_history returns it: a crash loop's repeated cycle folded into one row. */
interface HistoryRow {
  id: number;
  count: number;
  cycle: string[] | null;
  first_at: string;
  at: string;
  kind: string;
  source: string;
  actor: string | null;
  from_status: string | null;
  to_status: string | null;
  message: string | null;
}

async function history(api: Api, name: string, limit: number): Promise<HistoryRow[]> {
  return api.rpc<HistoryRow[]>('agent_history', { p_agent_name: name, p_limit: limit });
}

function historyLines(rows: HistoryRow[]): string {
  if (!rows.length) return '  (no history yet)\n';
  const paint = painter();
  return rows
    .map((row) => {
      const flip =
        row.from_status && row.to_status && row.from_status !== row.to_status
          ? `${paintStatus(row.from_status)} -> ${paintStatus(row.to_status)}`
          : '';
      const times = row.count > 1 ? paint.dim(` (x${row.count} since ${new Date(row.first_at).toISOString()})`) : '';
      const who = paint.dim(`(${row.actor ?? row.source})`);
      return `  ${new Date(row.at).toISOString()}  ${row.kind.replaceAll('_', ' ').padEnd(14)} ${[flip, oneLine(row.message, 160)].filter(Boolean).join('  ')}${times}  ${who}\n`;
    })
    .join('');
}

/** The pause that silences this agent's alerts (its own, or its host's), if any. */
async function pauseOf(api: Api, agent: LiveAgent): Promise<AlertPauseRow | undefined> {
  const pauses = await api.rpc<AlertPauseRow[]>('operator_alert_pauses');
  return pauses.find((p) => p.agent_name === agent.agent_name || (p.host !== null && p.host === agent.host));
}

function pauseText(pause: AlertPauseRow | undefined): string {
  if (!pause) return 'on';
  const what = pause.host ? `paused for its host ${pause.host}` : 'paused';
  return `${what} ${pause.until ? `until ${pause.until}` : 'until resumed'}${pause.reason ? ` (${pause.reason})` : ''}`;
}

// How old the activity text is: after a restart it may still be the last words of the process before
// (the next ones ride on a heartbeat), so it is never shown without its age. Both times are the
// database's, so the CLI's clock does not enter.
function activityAge(agent: LiveAgent): string {
  if (!agent.last_activity || !agent.last_activity_at || !agent.last_heartbeat || agent.seconds_since_heartbeat === null) return '';
  const sinceHeartbeat = (Date.parse(agent.last_heartbeat) - Date.parse(agent.last_activity_at)) / 1000;
  return ` (${ago(agent.seconds_since_heartbeat + Math.max(0, sinceHeartbeat))})`;
}

function facts(agent: LiveAgent, pause: AlertPauseRow | undefined): [string, string][] {
  const up = agent.uptime_s !== null ? `up ${span(agent.uptime_s)}` : agent.down_s !== null ? `down ${span(agent.down_s)}` : '-';
  const exit = agent.exit_signal ? `signal ${agent.exit_signal}` : agent.exit_code !== null ? `code ${agent.exit_code}` : null;
  return [
    ['status', `${paintStatus(agent.status)} (set by ${agent.status_source})${agent.status_reason ? `: ${agent.status_reason}` : ''}`],
    ['health', reportedHealth(agent) === null ? HEALTH_NOT_REPORTED_WHY : `${agent.health} / 100`],
    ['host', agent.host ?? '- (no runner manages it)'],
    ['runner', agent.runner_id === null ? 'none' : (agent.runner_status ?? 'unknown')],
    ['process', `${agent.pid === null ? 'none recorded' : `pid ${agent.pid}`}, ${up}${exit ? `, last exit ${exit}` : ''}`],
    ['heartbeat', `${ago(agent.seconds_since_heartbeat)}; stale after ${agent.heartbeat_timeout_s} s (${agent.heartbeat_timeout_source})`],
    [
      'activity',
      `${agent.last_activity ?? '-'}${activityAge(agent)}; warning after ${agent.activity_timeout_s === null ? 'never' : `${agent.activity_timeout_s} s`} idle`,
    ],
    [
      'restarts',
      `${agent.restarts_total} after crashes, ${agent.restarts_10m} in the last 10 min${agent.crash_looping ? ' (crash loop)' : ''}`,
    ],
    ['alerts', pauseText(pause)],
    ...(agent.last_warning_at ? [['last warning', `${agent.last_warning_at}: ${agent.last_warning ?? ''}`] as [string, string]] : []),
    ...(agent.last_error_at ? [['last error', `${agent.last_error_at}: ${agent.last_error ?? ''}`] as [string, string]] : []),
  ];
}

export function registerShow(program: Command): void {
  connectionOptions(
    subcommand(program, 'status <agent>', 'one agent: status, process, restarts, timeouts, alert pause and its latest history').alias(
      'show',
    ),
  )
    .option('--events <n>', 'how many history rows to show', integerIn(0, 500), 10)
    .option('--json', 'print {agent, paused, history} as JSON')
    .action(
      action(async (agentName: string, options: ConnectionFlags & { events: number; json?: boolean }) => {
        const api = await connect(options);
        const agent = await findAgent(api, agentName);
        const [pause, rows] = await Promise.all([pauseOf(api, agent), history(api, agent.agent_name, options.events)]);
        if (options.json) return printJson({ agent, alerts_paused: pause ?? null, history: rows });
        const lines = facts(agent, pause);
        const width = Math.max(...lines.map(([term]) => term.length));
        process.stdout.write(`${painter().bold(agent.agent_name)}\n`);
        for (const [term, value] of lines) process.stdout.write(`  ${term.padEnd(width)}  ${value}\n`);
        if (options.events > 0) process.stdout.write(`history (newest first):\n${historyLines(rows)}`);
      }),
    );

  connectionOptions(subcommand(program, 'history <agent>', "an agent's history, newest first (a crash loop folded into one row)"))
    .option('--limit <n>', 'how many rows', integerIn(1, 500), 50)
    .option('--json', 'print the rows as JSON')
    .action(
      action(async (agentName: string, options: ConnectionFlags & { limit: number; json?: boolean }) => {
        const api = await connect(options);
        const agent = await findAgent(api, agentName);
        const rows = await history(api, agent.agent_name, options.limit);
        if (options.json) return printJson(rows);
        process.stdout.write(historyLines(rows));
      }),
    );

  connectionOptions(subcommand(program, 'reset <agent>', "forget an agent's restart count (pm2 reset); recorded in its history"))
    .option('--json', 'print {agent_name, restarts_total, crash_loop_ended} (the count before) as JSON')
    .action(
      action(async (agentName: string, options: ConnectionFlags & { json?: boolean }) => {
        const api = await connect(options);
        const agent = await findAgent(api, agentName);
        const reset = await api.rpc<{ agent_name: string; restarts_total: number; crash_loop_ended: boolean }>('reset_agent_restarts', {
          p_agent_name: agent.agent_name,
        });
        if (options.json) return printJson(reset);
        process.stdout.write(
          `Reset the restart count of ${JSON.stringify(reset.agent_name)} (was ${reset.restarts_total})` +
            `${reset.crash_loop_ended ? '; its crash loop is over until it crashes 3 more times in 10 min' : ''}.\n`,
        );
      }),
    );
}
