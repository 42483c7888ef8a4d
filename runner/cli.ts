// The agent-status command line. Each subcommand lives in its own module and registers itself here
// with one line.
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { registerDevCommand } from './local-stack/dev.ts';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

const program = new Command('agent-status')
  .description('status and control of long-running agents, on Supabase')
  .version(version);

registerDevCommand(program);

await program.parseAsync(process.argv);
