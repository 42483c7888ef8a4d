// The runner alone: `agent-status runner` without `runner install` and the CLI's other commands.
// `npm run build:runner` bundles this file into dist/agent-status-runner.mjs, which a host's service
// runs with plain node: no TypeScript loader thread, 70-75 MB RSS idle instead of about 90 (npm run
// bench). Nothing here imports runner/cli/ (tests/runner/layering.test.ts).
import { Command } from 'commander';
import { registerRunnerCommand } from './command.ts';

const program = new Command('agent-status');
registerRunnerCommand(program);
await program.parseAsync(process.argv);
