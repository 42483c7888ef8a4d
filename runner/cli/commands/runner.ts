// `agent-status runner`: the host runner's command (runner/daemon/command.ts, shared with the service's
// own bundle) with the CLI's `runner install` added, which writes the systemd unit.
import type { Command } from 'commander';
import { registerRunnerCommand as registerRunner } from '../../daemon/command.ts';
import { registerRunnerInstall } from './runner-install.ts';

/** Registers `runner` and `runner install` on the agent-status CLI. */
export function registerRunnerCommand(program: Command): Command {
  const runner = registerRunner(program);
  registerRunnerInstall(runner);
  return runner;
}
