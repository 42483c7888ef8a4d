// `agent-status set <agent> <status> <health>`: forces an agent's status in the database without
// touching any process (the seed's "Force stop", fix_agent_status.py and agent_status_lock.py with
// arguments). force_agent_status records it in the history as this operator's action.
import type { Command } from 'commander';
import { SETTABLE_STATUSES } from '../../../shared/status.ts';
import { action, integerIn, subcommand } from './action.ts';
import { connect, connectionOptions, type ConnectionFlags } from './connection.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { paintStatus, printJson } from './output.ts';
import { findAgent, type LiveAgent } from './agents.ts';

export function registerSet(program: Command): void {
  connectionOptions(
    subcommand(
      program,
      'set <agent> <status> <health>',
      `force an agent's status in the database (${SETTABLE_STATUSES.join('|')}, health 0-100) without touching its process`,
    ),
  )
    .option('--reason <text>', 'why, for the history (default: "forced to <status> by <you>")')
    .option('--json', 'print the updated row as JSON')
    .action(
      action(async (agent: string, status: string, healthText: string, options: ConnectionFlags & { reason?: string; json?: boolean }) => {
        if (!(SETTABLE_STATUSES as readonly string[]).includes(status)) {
          throw new CliError(
            `status must be one of ${SETTABLE_STATUSES.join(', ')}, got ${JSON.stringify(status)}`,
            EXIT.usage,
            'stale is only ever inferred from missing heartbeats; set stopped if the agent is not running.',
          );
        }
        let health: number;
        try {
          health = integerIn(0, 100)(healthText);
        } catch (error) {
          throw new CliError(`health: ${(error as Error).message}`, EXIT.usage);
        }
        const api = await connect(options);
        // Read first: the answer says what it was, and an unknown name gets the nearest names.
        const before = await findAgent(api, agent);
        const row = await api.rpc<LiveAgent>('force_agent_status', {
          p_agent_name: agent,
          p_status: status,
          p_health: health,
          p_reason: options.reason ?? null,
        });
        if (options.json) return printJson(row);
        process.stdout.write(
          `${agent}: ${paintStatus(before.status)} -> ${paintStatus(row.status)}, health ${row.health} ` +
            `(recorded in its history as set by ${api.who}; no process was touched)\n`,
        );
      }),
    );
}
