// `agent-status run --name <agent> -- <command...>`: reports any program's status with no code change.
// The program's pid is reported as started, the SDK heartbeats while it lives, signals sent to this
// wrapper are passed on, and its end is reported: stopped after exit 0 (or after a stop signal that
// this wrapper passed on), error with the exit code and the last lines of its standard error
// otherwise. The wrapper exits with the program's code (128 + signal number when a signal ended it),
// so whatever supervises it sees the same result as without it.
import { constants } from 'node:os';
import { Option, type Command } from 'commander';
import { execa } from 'execa';
import { AgentStatus } from '../../../shared/sdk/index.ts';
import { action, integerIn, subcommand } from './action.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { readLocalStackIfPresent } from '../../local-stack/connection-file.ts';
import { localStackDir } from './connection.ts';

interface RunOptions {
  name: string;
  url?: string;
  agentToken?: string;
  heartbeat: number;
  stderrLines: number;
}

// Signals a supervisor or a terminal sends to say "stop": the program dying of one of these (or
// exiting 128 + its number, as shells do) after we passed it on is a requested stop, not a crash.
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const FORWARDED = [...STOP_SIGNALS, 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;
type Forwarded = (typeof FORWARDED)[number];

/** The last `lines` lines of a stream's text, bounded in memory whatever the program prints. */
class Tail {
  #text = '';
  constructor(
    private readonly lines: number,
    private readonly maxChars = 3000,
  ) {}
  push(chunk: string) {
    this.#text = (this.#text + chunk).slice(-this.maxChars * 2);
  }
  toString(): string {
    return this.#text.trimEnd().split('\n').slice(-this.lines).join('\n').slice(-this.maxChars);
  }
}

function signalNumber(signal: string): number {
  return constants.signals[signal as keyof typeof constants.signals] ?? 0;
}

export async function runWrapped(command: string[], options: RunOptions): Promise<number> {
  const url = options.url ?? readLocalStackIfPresent(localStackDir())?.url;
  if (!url) {
    throw new CliError(
      'run needs the project URL',
      EXIT.usage,
      'Set AGENT_STATUS_URL (or --url), or start the local stack with `npm start`.',
    );
  }
  if (!options.agentToken) {
    throw new CliError(
      `run needs the token of agent ${JSON.stringify(options.name)}`,
      EXIT.usage,
      `Create one with: agent-status token create agent --name ${JSON.stringify(options.name)}, then set ` +
        `AGENT_STATUS_TOKEN (or --agent-token).`,
    );
  }
  const status = new AgentStatus({
    url,
    token: options.agentToken,
    agentName: options.name,
    heartbeatIntervalMs: options.heartbeat * 1000,
    log: (message) => process.stderr.write(`[agent-status run] ${message}\n`),
  });

  const [file, ...args] = command;
  const child = execa(file, args, {
    stdin: 'inherit',
    stdout: 'inherit',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    // the program is ours to stop; execa must not kill it when this process exits for a signal
    cleanup: false,
  });
  const tail = new Tail(options.stderrLines);
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    process.stderr.write(chunk);
    tail.push(chunk);
  });

  let stopSignal: Forwarded | undefined;
  const handlers = FORWARDED.map((signal) => {
    const handler = () => {
      if ((STOP_SIGNALS as readonly string[]).includes(signal)) stopSignal ??= signal;
      child.kill(signal);
    };
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });
  if (child.pid) status.markStarted(child.pid);

  const result = await child;
  const signal = result.signal;
  const code = signal ? 128 + signalNumber(signal) : (result.exitCode ?? (result.code === 'ENOENT' ? 127 : 126));
  const requestedStop = stopSignal !== undefined && (signal !== undefined || code === 128 + signalNumber(stopSignal));

  if (!child.pid) {
    const why = `could not start ${JSON.stringify(file)}: ${result.originalMessage || result.shortMessage}`;
    process.stderr.write(`[agent-status run] ${why}\n`);
    status.markStarted();
    status.reportError(why);
  } else if (code !== 0 && !requestedStop) {
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    const lastLines = tail.toString();
    status.reportError(lastLines ? `${how}; last stderr lines:\n${lastLines}` : how);
  }
  status.markStopped(child.pid ? { exitCode: result.exitCode ?? undefined, exitSignal: signal ?? undefined } : {});
  await status.close();
  for (const remove of handlers) remove();
  return code;
}

export function registerRun(program: Command): void {
  subcommand(program, 'run', 'run a program and report its status with no code change: started, heartbeats, stopped or error')
    .requiredOption('--name <agent>', 'the agent name, exactly as in agent_status')
    .addOption(new Option('--url <url>', 'project URL (default: the local stack)').env('AGENT_STATUS_URL'))
    .addOption(new Option('--agent-token <token>', "the agent's token, asa_...").env('AGENT_STATUS_TOKEN'))
    .option('--heartbeat <seconds>', 'seconds between heartbeats while the program runs', integerIn(1, 3600), 30)
    .option('--stderr-lines <n>', 'how many last lines of standard error to report when it fails', integerIn(0, 200), 20)
    .argument('<command...>', 'the program and its arguments (after --)')
    .action(action((command: string[], options: RunOptions) => runWrapped(command, options)));
}
