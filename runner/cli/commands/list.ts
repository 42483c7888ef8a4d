// `agent-status list`: every agent as the database sees it now (the seed's agent_status_lock.py with no
// arguments). Stale is applied at the database's now(), never this machine's clock.
import type { Command } from 'commander';
import { action, subcommand } from './action.ts';
import { connect, connectionOptions, type ConnectionFlags } from './connection.ts';
import { listAgents } from './agents.ts';
import { pausedAlerts } from './alerts.ts';
import type { LiveAgent } from './agents.ts';
import { ago, oneLine, paintStatus, painter, printJson, span, table } from './output.ts';
import { runnerAway } from '../../../shared/status.ts';
import { reportedHealth } from '../../../shared/rows.ts';

const secondsSince = (agent: LiveAgent, time: string) => (Date.parse(agent.observed_at) - Date.parse(time)) / 1000;

/** Up 3 min, down since, or silent since: uptime counts only while a process is known to run. */
function upOrDown(agent: LiveAgent): string {
  if (agent.uptime_s !== null) return `up ${span(agent.uptime_s)}`;
  if (agent.down_s !== null) return `down ${span(agent.down_s)}`;
  if (agent.status === 'stale' && agent.seconds_since_heartbeat !== null) return `silent ${span(agent.seconds_since_heartbeat)}`;
  return '-';
}

/** What the row says beside its status: why it is not running, what it does, and a recent warning. */
function note(agent: LiveAgent): string {
  const dim = painter().dim;
  if (agent.status === 'running') {
    const warned =
      agent.last_warning && agent.last_warning_at && agent.warnings_1h > 0
        ? dim(` (warning ${ago(secondsSince(agent, agent.last_warning_at))}: ${oneLine(agent.last_warning, 40)})`)
        : '';
    return oneLine(agent.last_activity) + warned;
  }
  // an error reported by the agent keeps its text even after its exit handler said stopped
  const why = agent.status_reason ?? (agent.status === 'error' ? agent.last_error : null) ?? agent.last_activity;
  const exit = agent.status === 'error' && agent.exit_code !== null ? dim(` (exit code ${agent.exit_code})`) : '';
  return oneLine(why) + exit;
}

function restarts(agent: LiveAgent): string {
  if (agent.restarts_total === 0) return '-';
  return `${agent.restarts_total}${agent.restarts_10m ? ` (${agent.restarts_10m} in 10 min)` : ''}${agent.crash_looping ? ', crash loop' : ''}`;
}

function host(agent: LiveAgent): string {
  const dim = painter().dim;
  if (!agent.host) return dim('-');
  const away = runnerAway(agent, span, true);
  return away ? agent.host + dim(` (runner ${away})`) : agent.host;
}

export function registerList(program: Command): void {
  connectionOptions(
    subcommand(program, 'list', 'list all agents: status, health, uptime, restarts, host, last heartbeat, why (or what it does)'),
  )
    .option('--json', 'print the rows as JSON')
    .action(
      action(async (options: ConnectionFlags & { json?: boolean }) => {
        const api = await connect(options);
        const agents = await listAgents(api);
        if (options.json) return printJson(agents);
        const paused = await pausedAlerts(api, agents);
        if (!agents.length) {
          process.stdout.write('No agents yet. A runner registers the agents in its config; an agent token creates its agent.\n');
          return;
        }
        process.stdout.write(
          `${table(
            ['AGENT', 'STATUS', 'HEALTH', 'UP', 'RESTARTS', 'HOST', 'HEARTBEAT', 'NOTE'],
            agents.map((a) => [
              a.agent_name,
              paintStatus(a.status),
              // a health nobody reported is no figure: 0 would read as a dead agent
              reportedHealth(a)?.toString() ?? painter().dim('-'),
              upOrDown(a),
              restarts(a),
              host(a),
              ago(a.seconds_since_heartbeat),
              note(a) + (paused.get(a.agent_name) ?? ''),
            ]),
          )}\n`,
        );
      }),
    );
}
