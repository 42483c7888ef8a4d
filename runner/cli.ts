// The agent-status command line. Each subcommand lives in its own module and registers itself here
// with one line.
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { registerDevCommand } from './local-stack/dev.ts';
import { registerList } from './commands/list.ts';
import { registerSet } from './commands/set.ts';
import { registerControl } from './commands/control.ts';
import { registerToken } from './commands/token.ts';
import { registerOperator } from './commands/operator.ts';
import { registerRun } from './commands/run.ts';
import { registerDoctor } from './commands/doctor.ts';
import { registerTest } from './commands/test.ts';
import { registerIntegrate } from './commands/integrate.ts';
import { registerRunnerCommand } from './commands/runner.ts';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

const program = new Command('agent-status')
  .description('status and control of long-running agents, on Supabase')
  .version(version);

registerDevCommand(program);
registerList(program);
registerSet(program);
registerControl(program);
registerToken(program);
registerOperator(program);
registerRun(program);
registerDoctor(program);
registerTest(program);
registerIntegrate(program);
registerRunnerCommand(program);

await program.parseAsync(process.argv);
