// `agent-status runner install`: writes the systemd unit that runs this installation's runner as a
// service, with the right user, paths and KillMode=process (the agents keep running while the runner
// restarts, and the runner adopts them when it is back).
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { REPO_ROOT } from '../../paths.ts';
import { action, subcommand } from './action.ts';
import { CliError, EXIT } from './exit-codes.ts';

export const RUNNER_BUNDLE = join(REPO_ROOT, 'dist', 'agent-status-runner.mjs');
const DEFAULT_UNIT = '/etc/systemd/system/agent-status-runner.service';

export interface UnitOptions {
  user: string;
  config: string;
  envFile?: string;
  stopAgentsOnExit?: boolean;
}

/** The unit file's text. */
export function systemdUnit(options: UnitOptions): string {
  const exec = [process.execPath, '--max-semi-space-size=1', RUNNER_BUNDLE, 'runner', '--config', options.config];
  if (options.stopAgentsOnExit) exec.push('--stop-agents-on-exit');
  return `# Written by agent-status runner install. Apply: systemctl daemon-reload && systemctl enable --now agent-status-runner
[Unit]
Description=agent-status runner: supervises this host's agents
After=network-online.target
Wants=network-online.target

[Service]
User=${options.user}
WorkingDirectory=${dirname(options.config)}
${options.envFile ? `# SUPABASE_URL, SUPABASE_PUBLISHABLE_KEY, AGENT_STATUS_RUNNER_TOKEN (asr_...): readable by this user only\nEnvironmentFile=${options.envFile}\n` : ''}# --max-semi-space-size=1 keeps V8's young generation small: less memory for a daemon that allocates little
ExecStart=${exec.join(' ')}
# Only the runner: the agents run in their own process groups and keep running across a restart of the
# runner, which adopts them when it comes back.
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=60
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`;
}

function serviceUser(explicit: string | undefined): string {
  if (explicit === 'root') {
    throw new CliError(
      '--user root: the runner and every agent it starts would run as root, which it refuses',
      EXIT.usage,
      'Run agents as an unprivileged user (create one with: useradd --system --create-home agents), then --user agents.',
    );
  }
  const user = explicit ?? (process.getuid?.() === 0 ? process.env.SUDO_USER : userInfo().username);
  if (!user || user === 'root') {
    throw new CliError(
      'say which user runs the runner: --user <name>',
      EXIT.usage,
      'Run agents as an unprivileged user (create one with: useradd --system --create-home agents), not as root.',
    );
  }
  try {
    execFileSync('id', ['-u', user], { stdio: 'ignore' });
  } catch {
    throw new CliError(`there is no user ${user} on this host`, EXIT.usage, `Create it first: useradd --system --create-home ${user}`);
  }
  return user;
}

/** Registers `install` under the `runner` command. */
export function registerRunnerInstall(runner: Command): void {
  subcommand(
    runner,
    'install',
    'write the systemd unit that runs this runner as a service (KillMode=process: agents survive runner restarts)',
  )
    .requiredOption('-c, --config <file>', "this host's agents file")
    .option('--user <name>', 'the user the runner and its agents run as (default: you, or $SUDO_USER under sudo)')
    // Not --env-file: Node 20 takes that option for itself wherever it stands on the command line and
    // exits with "node: <file>: not found" (code 9) before the CLI runs.
    .option(
      '--environment-file <file>',
      "the unit's EnvironmentFile, with SUPABASE_URL, SUPABASE_PUBLISHABLE_KEY, AGENT_STATUS_RUNNER_TOKEN",
    )
    .option('--stop-agents-on-exit', 'stop the agents when the service stops (default: leave them running)')
    .option('-o, --output <file>', 'where to write the unit', DEFAULT_UNIT)
    .option('--print', 'print the unit instead of writing it')
    .action(
      action(
        async (options: {
          config: string;
          user?: string;
          environmentFile?: string;
          stopAgentsOnExit?: boolean;
          output: string;
          print?: boolean;
        }) => {
          const config = resolve(options.config);
          if (!existsSync(config)) {
            throw new CliError(
              `no agents file at ${config}`,
              EXIT.usage,
              `Write one first (see ${join(REPO_ROOT, 'runner', 'agents.example.yaml')}), then check it with agent-status runner --check --config <file>.`,
            );
          }
          const environmentFile = options.environmentFile && resolve(options.environmentFile);
          if (environmentFile && !existsSync(environmentFile)) {
            throw new CliError(
              `no environment file at ${environmentFile}`,
              EXIT.usage,
              'Write it first (SUPABASE_URL=..., SUPABASE_PUBLISHABLE_KEY=..., AGENT_STATUS_RUNNER_TOKEN=asr_...), ' +
                'readable by the service user only (chmod 600), then run install again.',
            );
          }
          const user = serviceUser(options.user);
          if (!existsSync(RUNNER_BUNDLE)) {
            throw new CliError(
              `the service build of the runner is missing (${RUNNER_BUNDLE})`,
              EXIT.usage,
              'In a checkout, run npm run build first.',
            );
          }
          const unit = systemdUnit({
            user,
            config,
            envFile: environmentFile,
            stopAgentsOnExit: options.stopAgentsOnExit,
          });
          if (options.print) {
            process.stdout.write(unit);
            return;
          }
          const output = resolve(options.output);
          try {
            writeFileSync(output, unit);
          } catch (error) {
            throw new CliError(
              `cannot write ${output}: ${(error as Error).message}`,
              EXIT.usage,
              'Run it with sudo, or choose --output / --print.',
            );
          }
          process.stdout.write(
            `wrote ${output}\nnext: systemctl daemon-reload && systemctl enable --now ${output.replace(/^.*\/|\.service$/g, '')}\n`,
          );
        },
      ),
    );
}
