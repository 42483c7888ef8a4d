// `agent-status operator add|remove <email>`: the operator allowlist. An operator added by email can
// sign in to the dashboard (and the CLI) with that address; their first sign-in links the account.
import type { Command } from 'commander';
import { action, subcommand } from './action.ts';
import { connect, connectionOptions, type ConnectionFlags } from './connection.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { printJson } from './output.ts';

export function registerOperator(program: Command): void {
  const operator = program.command('operator').description('add or remove operators (who may read and control agents)');

  connectionOptions(subcommand(operator, 'add <email>', 'allow a user (by email) to operate agents'))
    .option('--json', 'print the operator row as JSON')
    .action(
      action(async (email: string, options: ConnectionFlags & { json?: boolean }) => {
        const row = await (await connect(options)).rpc<{ id: string; email: string; user_id: string | null }>('add_operator', {
          p_email: email,
        });
        if (options.json) return printJson(row);
        process.stdout.write(`${row.email} is an operator${row.user_id ? '' : ' (from their first sign-in)'}.\n`);
      }),
    );

  connectionOptions(subcommand(operator, 'remove <email>', 'remove an operator; their operator tokens stop working'))
    .option('--json', 'print {"removed": true|false} as JSON')
    .action(
      action(async (email: string, options: ConnectionFlags & { json?: boolean }) => {
        const removed = await (await connect(options)).rpc<boolean>('remove_operator', { p_email: email });
        if (options.json) return printJson({ removed });
        if (!removed) throw new CliError(`no operator with email ${JSON.stringify(email)}`, EXIT.notFound, 'Nothing was changed.');
        process.stdout.write(`${email} is no longer an operator.\n`);
      }),
    );
}
