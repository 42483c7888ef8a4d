// The runner alone: `agent-status runner` without the CLI's other commands. `npm run build:runner`
// bundles this file into dist/agent-status-runner.mjs, which a host's service runs with plain node:
// no TypeScript loader thread, 70-75 MB RSS idle instead of about 90 (npm run bench).
import { Command } from 'commander';
import { registerRunnerCommand } from '../cli/commands/runner.ts';

const program = new Command('agent-status');
registerRunnerCommand(program);
await program.parseAsync(process.argv);
