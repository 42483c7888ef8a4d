// `agent-status timeouts <agent> [--heartbeat 45s] [--activity 10m]`: sets how long an agent may be
// silent before it reads stale, and how long without activity before it reads warning. Recorded in
// its history (set_agent_timeouts writes a timeouts_set event); an operator's value wins over the
// runner's config and the one derived from the interval the agent's SDK declares. `default` gives a
// timeout back to those.
import { InvalidArgumentError, type Command } from 'commander';
import { action, subcommand } from './action.ts';
import { connect, connectionOptions, type ConnectionFlags } from './connection.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { printJson } from './output.ts';
import { agentById, findAgent, type LiveAgent } from './agents.ts';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "45s", "10m", "2h", "90" (seconds), or "default" (0: back to the derived value). */
export function timeoutSeconds(value: string): number {
  if (value === 'default') return 0;
  const match = /^(\d+)(s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError(`expected a duration like 45s, 10m or 2h, or "default", got ${JSON.stringify(value)}.`);
  return Number(match[1]) * UNITS[match[2] ?? 's'];
}

interface TimeoutOptions extends ConnectionFlags {
  heartbeat?: number;
  activity?: number;
  json?: boolean;
}

export function registerTimeouts(program: Command): void {
  connectionOptions(
    subcommand(
      program,
      'timeouts <agent>',
      'set how long an agent may stay silent (heartbeat) or idle (activity) before it reads stale or warning',
    ),
  )
    .option('--heartbeat <duration>', 'silence before it reads stale: 5s..24h, or "default"', timeoutSeconds)
    .option('--activity <duration>', 'time without activity before it reads warning: 10s..7d, or "default"', timeoutSeconds)
    .option('--json', 'print the updated row as JSON')
    .action(
      action(async (agent: string, options: TimeoutOptions) => {
        if (options.heartbeat === undefined && options.activity === undefined) {
          throw new CliError(
            'give --heartbeat, --activity or both',
            EXIT.usage,
            'For example: agent-status timeouts "My Agent" --heartbeat 45s',
          );
        }
        const api = await connect(options);
        const { id } = await findAgent(api, agent);
        await api.rpc('set_agent_timeouts', {
          p_agent_name: agent,
          p_heartbeat_timeout_s: options.heartbeat ?? null,
          p_activity_timeout_s: options.activity ?? null,
        });
        const row = (await agentById(api, id)) as LiveAgent;
        if (options.json) return printJson(row);
        process.stdout.write(
          `${agent}: stale after ${row.heartbeat_timeout_s} s without a heartbeat (${row.heartbeat_timeout_source}), ` +
            `warning after ${row.activity_timeout_s === null ? 'no limit' : `${row.activity_timeout_s} s`} without activity ` +
            `(recorded in its history as set by ${api.who})\n`,
        );
      }),
    );
}
