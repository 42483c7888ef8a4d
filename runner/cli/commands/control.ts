// `agent-status start|stop|restart <agent>` and `start-all|stop-all [--host h]`: enqueue commands for the
// runners and, unless --no-wait, wait for their results. Exit 0 when all succeeded, 1 when any failed
// or expired, 7 when the wait timed out with commands still pending or claimed, or at once when the
// agent's runner is already known to be silent or offline (nothing would answer before the command
// expires: it waited 132 s for that, issue 19); the command stays queued for a runner that comes back.
import type { Command } from 'commander';
import { enqueueCommands, type QueuedCommand, waitForCommands } from '../../../shared/process-manager.ts';
import { COMMAND_ACTIONS, type CommandAction, isFinished, runnerAway } from '../../../shared/status.ts';
import { action, integerIn, subcommand } from './action.ts';
import { connect, connectionOptions, type Api, type ConnectionFlags } from './connection.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { painter, printJson, span } from './output.ts';
import { startProgress } from './progress.ts';
import { listAgents, unknownAgent, type LiveAgent } from './agents.ts';

interface ControlOptions extends ConnectionFlags {
  wait: boolean;
  timeout: number;
  json?: boolean;
  host?: string;
}

// The sweep expires a pending command after command_ttl_s (120 s by default) and runs every minute,
// so by 180 s every command has an answer unless a runner claimed it and went silent.
const DEFAULT_TIMEOUT_S = 180;
// How often the wait reads the commands again.
const POLL_MS = 1000;

async function enqueue(api: Api, verb: CommandAction, agent: string | null, host: string | null): Promise<QueuedCommand[]> {
  try {
    return await enqueueCommands(api.rpc, verb, { agentName: agent, host });
  } catch (error) {
    if (agent && error instanceof CliError && error.exitCode === EXIT.notFound) {
      throw unknownAgent(
        agent,
        (await listAgents(api)).map((a) => a.agent_name),
      );
    }
    throw error;
  }
}

function describe(command: QueuedCommand): string {
  const paint = painter();
  const seconds = command.finished_at
    ? ` in ${((Date.parse(command.finished_at) - Date.parse(command.created_at)) / 1000).toFixed(1)} s`
    : '';
  const result = command.result ? `: ${command.result}` : '';
  const what = `${command.action} ${JSON.stringify(command.agent_name)}`;
  switch (command.status) {
    case 'succeeded':
      return `${paint.green('✓')} ${what} succeeded${seconds}${command.claimed_by_host ? ` on ${command.claimed_by_host}` : ''}${result}`;
    case 'failed':
    case 'expired':
      return `${paint.red('✗')} ${what} ${command.status}${seconds}${result}`;
    default:
      return (
        `${paint.yellow('…')} ${what} still ` +
        `${command.status}${command.claimed_by_host ? ` by the runner on ${command.claimed_by_host}` : ''}`
      );
  }
}

/** Why nobody will answer a command: its agent's runner is silent, offline or stopped (the database's view, read now). */
function runnerGone(agent: LiveAgent | undefined): string | undefined {
  const away = agent && runnerAway(agent, span);
  return away ? `its runner on ${agent.host} is ${away}` : undefined;
}

/**
 * Prints the outcome and returns the exit code; `gone` are commands not waited for, with why;
 * `unmanaged` the agents no runner manages, which get their commands with their next heartbeat.
 */
function report(commands: QueuedCommand[], gone: Map<number, string>, options: ControlOptions, unmanaged: Set<string>): number {
  const unfinished = commands.filter((c) => !isFinished(c.status) && !gone.has(c.id));
  const failed = commands.filter((c) => c.status === 'failed' || c.status === 'expired');
  if (options.json) printJson(commands);
  else for (const command of commands) process.stdout.write(`${describe(command)}\n`);
  if (gone.size) {
    const first = commands.find((c) => gone.has(c.id))!;
    process.stderr.write(
      [...gone.keys()]
        .map((id) => commands.find((c) => c.id === id)!)
        .map((c) => `not waiting for ${c.action} ${JSON.stringify(c.agent_name)}: ${gone.get(c.id)}.\n`)
        .join('') +
        `The command stays queued until it expires (${first.expires_at}) and runs if the runner is back by then. ` +
        `Check the host with: agent-status doctor "${first.agent_name}"\n`,
    );
    return EXIT.timeout;
  }
  if (unfinished.length) {
    const pending = unfinished.filter((c) => c.status === 'pending');
    const silent = pending.filter((c) => unmanaged.has(c.agent_name));
    const unclaimed = pending.filter((c) => !unmanaged.has(c.agent_name));
    process.stderr.write(
      `gave up waiting after ${options.timeout} s: ${unfinished.length} command(s) not finished.\n` +
        (silent.length
          ? `${silent.map((c) => JSON.stringify(c.agent_name)).join(', ')} sent no heartbeat to carry it: is the agent running? ` +
            `Check with: agent-status doctor "${silent[0].agent_name}"\n`
          : '') +
        (unclaimed.length
          ? `No runner has claimed ${unclaimed.map((c) => JSON.stringify(c.agent_name)).join(', ')}: is its runner ` +
            `running and online? Check with: agent-status doctor "${unclaimed[0].agent_name}"\n`
          : '') +
        (pending.length ? '' : 'The runner (or the agent) got them but has not answered; check its log.\n'),
    );
    return EXIT.timeout;
  }
  return failed.length ? EXIT.failed : EXIT.ok;
}

async function control(verb: CommandAction, agent: string | null, options: ControlOptions): Promise<number> {
  const api = await connect(options);
  const commands = await enqueue(api, verb, agent, options.host ?? null);
  if (!commands.length) {
    process.stdout.write(
      options.json ? '[]\n' : `No agent is managed by a runner${options.host ? ` on ${options.host}` : ''}: nothing to ${verb}.\n`,
    );
    return EXIT.ok;
  }
  // commands whose runner is known to be gone are not waited for: they would only expire
  const agents = new Map((await listAgents(api)).map((a) => [a.agent_name, a]));
  const gone = new Map(
    commands.flatMap((c) => {
      const why = runnerGone(agents.get(c.agent_name));
      return why ? [[c.id, why] as const] : [];
    }),
  );
  // an agent no runner manages gets a stop or restart with its next heartbeat: say how long that can take
  const unmanaged = new Set<string>();
  for (const c of commands) {
    const row = agents.get(c.agent_name);
    if (!row || row.runner_id !== null) continue;
    unmanaged.add(c.agent_name);
    if (!options.json) {
      process.stdout.write(
        `no runner manages ${JSON.stringify(c.agent_name)}: it gets the ${verb} with its next heartbeat, ` +
          `up to ${row.heartbeat_interval_s ?? row.heartbeat_timeout_s} s from now\n`,
      );
    }
  }
  if (!options.wait) {
    if (options.json) printJson(commands);
    else
      for (const c of commands)
        process.stdout.write(`queued ${c.action} ${JSON.stringify(c.agent_name)} (command ${c.id}, expires ${c.expires_at})\n`);
    return EXIT.ok;
  }
  const progress = startProgress(`waiting for ${commands.length} ${verb} command(s)`);
  try {
    const done = await waitForCommands(
      api.rpc,
      commands.filter((c) => !gone.has(c.id)),
      {
        timeoutMs: options.timeout * 1000,
        pollMs: POLL_MS,
        onPoll: (rows) => {
          const finished = rows.filter((r) => isFinished(r.status)).length;
          const claimed = rows.filter((r) => r.status === 'claimed').length;
          progress.update(`${verb}: ${finished}/${rows.length} finished, ${claimed} claimed by a runner`);
        },
      },
    );
    progress.stop();
    // the time ran out while the database could not be read: that, not a stale "still pending", is the answer
    if (done.readError) throw done.readError;
    const latest = new Map(done.commands.map((row) => [row.id, row]));
    return report(
      commands.map((c) => latest.get(c.id) ?? c),
      gone,
      options,
      unmanaged,
    );
  } finally {
    progress.stop();
  }
}

function addWaitOptions(command: Command): Command {
  return connectionOptions(command)
    .option('--no-wait', 'return once the command is queued')
    .option('--timeout <seconds>', 'how long to wait for the result', integerIn(1, 3600), DEFAULT_TIMEOUT_S)
    .option('--json', 'print the command rows as JSON');
}

export function registerControl(program: Command): void {
  for (const verb of COMMAND_ACTIONS) {
    addWaitOptions(
      subcommand(
        program,
        `${verb} <agent>`,
        `${verb} an agent through the runner on its host (stop and restart also reach an agent no runner manages, with its next heartbeat), and wait for the result`,
      ),
    ).action(action((agent: string, options: ControlOptions) => control(verb, agent, options)));
  }
  addWaitOptions(subcommand(program, 'start-all', 'start every agent a runner manages (or those of one host)'))
    .option('--host <host>', 'only the agents of the runner on this host')
    .action(action((options: ControlOptions) => control('start', null, options)));
  addWaitOptions(subcommand(program, 'stop-all', 'stop every agent a runner manages (or those of one host)'))
    .option('--host <host>', 'only the agents of the runner on this host')
    .action(action((options: ControlOptions) => control('stop', null, options)));
}
