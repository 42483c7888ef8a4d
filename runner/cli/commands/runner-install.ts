// `agent-status runner install`: writes the systemd unit that runs this installation's runner as a
// service, with the right user, paths and KillMode=process (the agents keep running while the runner
// restarts, and the runner adopts them when it is back). A config whose agents name their own `user:`
// gets a root unit: only root can start each agent as its user, which keeps the runner's token (in
// its environment and its files) out of the agents' reach.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../paths.ts';
import { action, subcommand } from './action.ts';
import { CliError, EXIT } from '../../exit-codes.ts';

export const RUNNER_BUNDLE = join(REPO_ROOT, 'dist', 'agent-status-runner.mjs');
const DEFAULT_UNIT = '/etc/systemd/system/agent-status-runner.service';

export interface UnitOptions {
  /** root when the agents run as their own users */
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
${options.user === 'root' ? '# root so that each agent runs as its own user: (runner/README.md, "Agents as their own users")\n' : ''}User=${options.user}
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

/** The agents of the config file by whether they name their own user; [] each when it is not YAML. */
function agentUsers(config: string): { withUser: string[]; without: string[] } {
  let agents: unknown;
  try {
    agents = (parse(readFileSync(config, 'utf8')) as { agents?: unknown } | null)?.agents;
  } catch {
    agents = undefined;
  }
  const list = Array.isArray(agents) ? (agents as { name?: unknown; user?: unknown }[]) : [];
  return {
    withUser: list.filter((agent) => agent?.user !== undefined).map((agent) => String(agent.name)),
    without: list.filter((agent) => agent?.user === undefined).map((agent) => String(agent?.name)),
  };
}

// Under a root runner the EnvironmentFile holds the token the agents must not read.
function checkPrivateFile(file: string): void {
  let mode: number;
  let owner: number;
  try {
    ({ mode, uid: owner } = statSync(file));
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`, EXIT.usage, 'Create it first, readable by root only.');
  }
  if (owner !== 0 || (mode & 0o077) !== 0) {
    throw new CliError(
      `${file} holds the runner token but is not root's alone (owner uid ${owner}, mode 0${(mode & 0o777).toString(8)})`,
      EXIT.usage,
      `Run: chown root ${file} && chmod 600 ${file}`,
    );
  }
}

/** The unit's user: root when the config's agents run as their own users, else the unprivileged runner user. */
function unitUser(config: string, explicit: string | undefined, environmentFile: string | undefined): string {
  const { withUser, without } = agentUsers(config);
  if (!withUser.length) return serviceUser(explicit);
  if (explicit && explicit !== 'root') {
    throw new CliError(
      `agents ${withUser.join(', ')} run as their own users (user: in ${config}), which needs the runner to run as root, not as ${explicit}`,
      EXIT.usage,
      'Leave out --user (the unit then runs the runner as root), or remove user: from the agents.',
    );
  }
  if (without.length) {
    throw new CliError(
      `agents ${without.join(', ')} have no user: and would run as root under the root runner this config needs`,
      EXIT.usage,
      'Give every agent its own user: (user: root only if it truly needs root).',
    );
  }
  if (environmentFile) checkPrivateFile(environmentFile);
  return 'root';
}

/** Registers `install` under the `runner` command. */
export function registerRunnerInstall(runner: Command): void {
  subcommand(
    runner,
    'install',
    'write the systemd unit that runs this runner as a service (KillMode=process: agents survive runner restarts)',
  )
    .requiredOption('-c, --config <file>', "this host's agents file")
    .option(
      '--user <name>',
      'the user the runner and its agents run as (default: you, or $SUDO_USER under sudo; root when the agents name their own user:)',
    )
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
          const user = unitUser(config, options.user, environmentFile);
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
