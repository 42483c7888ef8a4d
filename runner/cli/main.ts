// The agent-status command line. Each subcommand lives in its own module and registers itself here
// with one line. Only the module of the command being run is loaded: the runner and the `run`
// wrapper stay resident for days beside their agents, and every other command's imports (supabase
// auth, Vite, the local stack) would cost them about 14 MB each for nothing.
import { Command } from 'commander';

import { PACKAGE_VERSION } from '../paths.ts';
import { usageExit } from './commands/action.ts';

type Register = (program: Command) => void;

const commands: Record<string, () => Promise<Register>> = {
  dev: async () => (await import('./commands/dev.ts')).registerDevCommand,
  list: async () => (await import('./commands/list.ts')).registerList,
  logs: async () => (await import('./commands/logs.ts')).registerLogs,
  set: async () => (await import('./commands/set.ts')).registerSet,
  archive: async () => (await import('./commands/archive.ts')).registerArchive,
  timeouts: async () => (await import('./commands/timeouts.ts')).registerTimeouts,
  // start, stop, restart and start-all
  control: async () => (await import('./commands/control.ts')).registerControl,
  token: async () => (await import('./commands/token.ts')).registerToken,
  operator: async () => (await import('./commands/operator.ts')).registerOperator,
  run: async () => (await import('./commands/run.ts')).registerRun,
  doctor: async () => (await import('./commands/doctor.ts')).registerDoctor,
  test: async () => (await import('./commands/test.ts')).registerTest,
  integrate: async () => (await import('./commands/integrate.ts')).registerIntegrate,
  runner: async () => (await import('./commands/runner.ts')).registerRunnerCommand,
  alerts: async () => (await import('./commands/alerts.ts')).registerAlerts,
  // status (show), history and reset: one agent
  show: async () => (await import('./commands/show.ts')).registerShow,
};
const aliases: Record<string, string> = {
  start: 'control',
  stop: 'control',
  restart: 'control',
  'start-all': 'control',
  'stop-all': 'control',
  status: 'show',
  history: 'show',
  reset: 'show',
};

const program = new Command('agent-status')
  .description('status and control of long-running agents, on Supabase')
  .version(PACKAGE_VERSION)
  // an unknown command or option is bad arguments (2), as for every subcommand, not commander's 1
  .exitOverride(usageExit);

// Help, --version and mistyped commands need them all, to list them.
const named = process.argv[2] && (aliases[process.argv[2]] ?? process.argv[2]);
const chosen = named && named in commands ? [commands[named]] : Object.values(commands);
for (const load of chosen) (await load())(program);

await program.parseAsync(process.argv);
