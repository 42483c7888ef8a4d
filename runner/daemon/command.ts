// `runner --config <file>`: the host runner as a foreground process (systemd runs it; see
// runner/README.md). SIGTERM or SIGINT ends it gracefully; a second one ends it at once. Defined here,
// below the CLI, so the service's bundle (main.ts) holds no CLI code; the CLI adds `runner install`.
import type { Command } from 'commander';
import { ConfigError, loadConfig } from './config.ts';
import type { Runner } from './runner.ts';
import { EXIT } from '../exit-codes.ts';

function timestamped(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

/** Registers the `runner` command on `program`; returns it, for the CLI to add `runner install`. */
export function registerRunnerCommand(program: Command): Command {
  // Options after `install` are install's own (both have --config); commander needs positional options
  // from the top for that.
  return (
    program
      .enablePositionalOptions()
      .command('runner')
      .enablePositionalOptions()
      .description(
        'supervise the agents of this host: carry out start/stop/restart commands and keep the database in line with the processes',
      )
      // not a required option: `runner install` has its own, and commander would demand this one there too
      .option('-c, --config <file>', 'the agents file of this host (YAML; see runner/README.md)')
      .option('--state-dir <dir>', 'lock, state and agent logs (overrides runner.state_dir)')
      .option('--stop-agents-on-exit', 'stop the agents when the runner stops (default: leave them running)')
      .option('--check', 'validate the config file and exit')
      .option('--takeover', 'take the host over from a runner that is still live (it stops at its next poll); one runner per host')
      .action(async (options: { config?: string; stateDir?: string; stopAgentsOnExit?: boolean; check?: boolean; takeover?: boolean }) => {
        if (!options.config) {
          process.stderr.write("error: required option '-c, --config <file>' not specified\n");
          process.exitCode = EXIT.usage;
          return;
        }
        let config: ReturnType<typeof loadConfig>;
        try {
          config = loadConfig(options.config, { stateDir: options.stateDir });
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          process.stderr.write(`error: ${error.message}\n`);
          process.exitCode = EXIT.usage;
          return;
        }
        if (options.check) {
          process.stdout.write(
            `${config.file} is valid: ${config.agents.length} agent(s): ${config.agents.map((a) => a.name).join(', ')}\n`,
          );
          return;
        }

        // Loaded here, not at the top: the other agent-status commands need none of the runner's modules.
        const [{ Runner }, { LockHeldError }, { RunnerCallError }] = await Promise.all([
          import('./runner.ts'),
          import('./lock.ts'),
          import('./api.ts'),
        ]);
        let runner: Runner;
        try {
          runner = await Runner.start({
            config,
            log: timestamped,
            takeover: options.takeover,
            onStopped: (reason) => {
              process.stderr.write(`error: the runner stopped: ${reason}\n`);
              process.exit(1);
            },
          });
        } catch (error) {
          process.stderr.write(`error: the runner could not start: ${(error as Error).message}\n`);
          // another runner holds this host (its lock here, or the lease in the database): refused, 6
          const refused = error instanceof LockHeldError || (error instanceof RunnerCallError && error.code === '55000');
          // its token is unknown, or may not register one of its agents: 4, as the CLI says "not allowed"
          const denied = error instanceof RunnerCallError && (error.code === '42501' || error.code === '28000');
          process.exitCode = refused ? EXIT.conflict : denied ? EXIT.auth : EXIT.failed;
          return;
        }
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          if (++signals > 1) {
            timestamped(`${signal} again: exiting now`);
            process.exit(130);
          }
          timestamped(`${signal}: finishing the command in progress, then exiting`);
          void runner.shutdown({ stopAgents: options.stopAgentsOnExit }).then(
            () => process.exit(0),
            (error) => {
              process.stderr.write(`error while stopping: ${(error as Error).message}\n`);
              process.exit(1);
            },
          );
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      })
  );
}
