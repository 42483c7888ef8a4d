// `agent-status list`: every agent as the database sees it now (the seed's agent_status_lock.py with no
// arguments). Stale is applied at the database's now(), never this machine's clock.
import type { Command } from 'commander';
import { action, subcommand } from './action.ts';
import { connect, connectionOptions, type ConnectionFlags } from './connection.ts';
import { listAgents } from './agents.ts';
import { ago, oneLine, paintStatus, painter, printJson, table } from './output.ts';

export function registerList(program: Command): void {
  connectionOptions(subcommand(program, 'list', 'list all agents: status, health, host, last heartbeat, last activity'))
    .option('--json', 'print the rows as JSON')
    .action(
      action(async (options: ConnectionFlags & { json?: boolean }) => {
        const agents = await listAgents(await connect(options));
        if (options.json) return printJson(agents);
        if (!agents.length) {
          process.stdout.write('No agents yet. A runner registers the agents in its config; an agent token creates its agent.\n');
          return;
        }
        const dim = painter().dim;
        process.stdout.write(
          `${table(
            ['AGENT', 'STATUS', 'HEALTH', 'HOST', 'HEARTBEAT', 'ACTIVITY'],
            agents.map((a) => [
              a.agent_name,
              paintStatus(a.status),
              String(a.health),
              a.host ? a.host + (a.runner_online === false ? dim(' (runner offline)') : '') : dim('-'),
              ago(a.seconds_since_heartbeat),
              oneLine(a.status === 'running' ? a.last_activity : (a.status_reason ?? a.last_activity)),
            ]),
          )}\n`,
        );
      }),
    );
}
