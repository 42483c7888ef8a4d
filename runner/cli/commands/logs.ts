// `agent-status logs <agent> [-n 200] [--follow]`: the last lines of an agent's stdout and stderr,
// asked of the runner on its host through the database (request_agent_logs, answered within about
// a second). stdout lines go to stdout and stderr lines to stderr, as the agent wrote them. --follow
// asks again every 2 s and prints only what is new, until Ctrl-C.
import type { Command } from 'commander';
import { action, integerIn, subcommand } from './action.ts';
import { connect, connectionOptions, type Api, type ConnectionFlags } from './connection.ts';
import { CliError, EXIT } from '../../exit-codes.ts';
import { listAgents, unknownAgent } from './agents.ts';
import { printJson } from './output.ts';

interface LogAnswer {
  id: number;
  agent_name: string;
  answered_at: string | null;
  stdout: string[] | null;
  stderr: string[] | null;
  error: string | null;
}

const ANSWER_TIMEOUT_MS = 10_000;
const FOLLOW_EVERY_MS = 2000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Asks the agent's runner for its last `lines` lines and waits for the answer. */
async function fetchLogs(api: Api, agent: string, lines: number): Promise<LogAnswer> {
  let id: number;
  try {
    id = await api.rpc<number>('request_agent_logs', { p_agent_name: agent, p_lines: lines });
  } catch (error) {
    if (error instanceof CliError && error.exitCode === EXIT.notFound) {
      throw unknownAgent(
        agent,
        (await listAgents(api)).map((a) => a.agent_name),
      );
    }
    throw error;
  }
  const deadline = Date.now() + ANSWER_TIMEOUT_MS;
  for (;;) {
    const [answer] = await api.rpc<LogAnswer[]>('operator_agent_logs', { p_request_id: id });
    if (answer.answered_at) {
      if (answer.error) throw new CliError(`the runner could not read the logs of ${JSON.stringify(agent)}: ${answer.error}`, EXIT.failed);
      return answer;
    }
    if (Date.now() > deadline) {
      throw new CliError(
        `no answer from the runner of ${JSON.stringify(agent)} within ${ANSWER_TIMEOUT_MS / 1000} s`,
        EXIT.timeout,
        'Is the runner on its host running? `agent-status list` shows "runner offline" when it is not.',
      );
    }
    await sleep(150);
  }
}

/** The lines of `next` that come after what `previous` ended with (all of them when they do not overlap). */
export function newLines(previous: string[], next: string[]): string[] {
  for (let overlap = Math.min(previous.length, next.length); overlap > 0; overlap--) {
    let same = true;
    for (let i = 0; i < overlap && same; i++) same = previous[previous.length - overlap + i] === next[i];
    if (same) return next.slice(overlap);
  }
  return next;
}

export function registerLogs(program: Command): void {
  connectionOptions(subcommand(program, 'logs <agent>', "the last lines of an agent's stdout and stderr, read by the runner on its host"))
    .option('-n, --lines <n>', 'how many lines of each stream (1-500)', integerIn(1, 500), 200)
    .option('-f, --follow', 'keep printing new lines (every 2 s) until Ctrl-C')
    .option('--json', 'print the answer as JSON (not with --follow)')
    .action(
      action(async (agent: string, options: ConnectionFlags & { lines: number; follow?: boolean; json?: boolean }) => {
        if (options.json && options.follow) throw new CliError('--json and --follow do not go together', EXIT.usage);
        const api = await connect(options);
        let answer = await fetchLogs(api, agent, options.lines);
        if (options.json) return printJson(answer);
        const print = (stdout: string[], stderr: string[]) => {
          if (stdout.length) process.stdout.write(`${stdout.join('\n')}\n`);
          if (stderr.length) process.stderr.write(`${stderr.join('\n')}\n`);
        };
        print(answer.stdout ?? [], answer.stderr ?? []);
        if (!answer.stdout?.length && !answer.stderr?.length) {
          // said on stderr, so a pipe still gets exactly the agent's output (none)
          process.stderr.write(
            `${agent} printed nothing: its runner captured no stdout or stderr lines${options.follow ? ' yet; waiting for some' : ''}.\n`,
          );
        }
        if (!options.follow) return;
        let stopped = false;
        process.once('SIGINT', () => (stopped = true));
        while (!stopped) {
          await sleep(FOLLOW_EVERY_MS);
          if (stopped) break;
          const next = await fetchLogs(api, agent, options.lines);
          print(newLines(answer.stdout ?? [], next.stdout ?? []), newLines(answer.stderr ?? [], next.stderr ?? []));
          answer = next;
        }
      }),
    );
}
