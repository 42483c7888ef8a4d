// `agent-status archive <agent>`: removes an agent from every list and keeps its history. Its name
// becomes free, its tokens stop working and its unfinished commands fail; an agent that is alive is
// refused (stop it first). archive_agent in the database does all of it in one transaction.
import type { Command } from 'commander';
import { action, subcommand } from './action.ts';
import { connect, connectionOptions, type ConnectionFlags } from './connection.ts';
import { printJson } from './output.ts';

interface Archived {
  agent_id: number;
  agent_name: string;
  archived_as: string;
  tokens_revoked: number;
  commands_failed: number;
}

export function registerArchive(program: Command): void {
  connectionOptions(
    subcommand(program, 'archive <agent>', 'remove a stopped agent from the lists, keeping its history; its name is free again'),
  )
    .option('--json', 'print what was archived as JSON')
    .action(
      action(async (agent: string, options: ConnectionFlags & { json?: boolean }) => {
        const archived = await (await connect(options)).rpc<Archived>('archive_agent', { p_agent_name: agent });
        if (options.json) return printJson(archived);
        process.stdout.write(
          `Archived ${JSON.stringify(archived.agent_name)}: its history stays under ${JSON.stringify(archived.archived_as)}; ` +
            `${archived.tokens_revoked} token(s) revoked, ${archived.commands_failed} unfinished command(s) failed.\n` +
            "If a runner still lists it, remove it from that runner's config, or the runner registers it again as a new agent.\n",
        );
      }),
    );
}
