// The seed's process-manager.ts (startAgent, stopAgent, startAllAgents), plus restartAgent and
// forceStopAgent, over any supabase-js client signed in as an operator: a web app's or Node's. A
// command is queued in the database (enqueue_agent_commands), the agent's runner carries it out, and
// the promise settles with the runner's answer: resolved with the outcome, rejected with the reason
// (refused, failed, expired, or no answer in time). The dashboard's buttons go through this module;
// the CLI's start/stop/restart/start-all and test, and the command function, queue and wait through
// its enqueueCommands and waitForCommands with their own credentials.
import type { SupabaseClient } from '@supabase/supabase-js';
import type { OperatorCommandRow } from './rows.ts';
import { type CommandAction, type CommandStatus, commandAt, isFinished } from './status.ts';

/** A command as the database recorded it, and what the runner said about it. */
export interface CommandOutcome {
  commandId: number;
  agentId: number;
  action: CommandAction;
  status: CommandStatus;
  /** the runner's message: "started (pid 123)", "was not running", or why it failed */
  result: string | null;
}

export type CommandFailure = 'refused' | 'failed' | 'expired' | 'timeout';

/** Why a command did not succeed; `outcome` is the command as last read, when there is one. */
export class ProcessManagerError extends Error {
  constructor(
    readonly reason: CommandFailure,
    message: string,
    readonly outcome?: CommandOutcome,
    /** startAllAgents: every command's outcome, the successful ones too */
    readonly outcomes?: CommandOutcome[],
  ) {
    super(message);
    this.name = 'ProcessManagerError';
  }
}

export interface ProcessManagerOptions {
  /** How long to wait for the runner's answer before rejecting with reason 'timeout' (default 30 s). */
  timeoutMs?: number;
  /** How often to read the commands' status while waiting (default 250 ms). */
  pollMs?: number;
  /** Called once the commands are queued, before the runner answers (the dashboard refreshes then). */
  onQueued?: (commands: CommandOutcome[]) => void;
}

export interface ProcessManager {
  startAgent(agentName: string): Promise<CommandOutcome>;
  stopAgent(agentName: string): Promise<CommandOutcome>;
  restartAgent(agentName: string): Promise<CommandOutcome>;
  /**
   * Start for every agent a runner manages (or those of one host); rejects if any of them failed,
   * with all outcomes.
   */
  startAllAgents(options?: { host?: string }): Promise<CommandOutcome[]>;
  /**
   * The seed's "Force stop": sets the status to stopped in the database only; no process is touched.
   * Resolves once the database recorded it.
   */
  forceStopAgent(agentName: string, reason?: string): Promise<void>;
}

/**
 * Calls a SQL function of the API through PostgREST as the operator and answers its data; throws with
 * the server's message (and hint) when refused, an error with `retryable: true` when there was no
 * answer or a 5xx, 408 or 429 one. Each client adds its own credentials: a signed-in supabase-js
 * client, the CLI's operator token, the command function's caller.
 */
export type OperatorRpc = <T>(fn: string, args: Record<string, unknown>) => Promise<T>;

/** Whether an HTTP status (0: no answer) says the same request may succeed later. */
export const retryableStatus = (status: number): boolean => status === 0 || status === 408 || status === 429 || status >= 500;

// A command whose answer was lost (a 503 while the database still applied it, a dropped connection)
// is sent again with its key, which answers the first request's commands: a retried restart never
// restarts twice. About 3.5 s of retrying before giving up.
const ENQUEUE_ATTEMPTS = 4;
const ENQUEUE_RETRY_MS = 500;

// 128 random bits in hex: getRandomValues, unlike randomUUID, also exists on a dashboard served over
// plain http from a LAN host (not a secure context).
const newIdempotencyKey = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');

/** One agent by name, the agents of one host, or (neither) every agent a runner manages. */
export interface CommandTarget {
  agentName?: string | null;
  host?: string | null;
}

/** A queued command as operator_commands names it, with its agent's id and its path from the queue. */
export type QueuedCommand = OperatorCommandRow & { agent_id: number; via_heartbeat: boolean };

/**
 * Queues `action` through enqueue_agent_commands and reads the commands back through
 * operator_commands, named by agent and host: the one way every client queues a command. Every
 * request carries an idempotency key (a new one unless given), and a request that got no answer or a
 * retryable one is sent again with it: the same key from the same caller answers the first
 * request's commands instead of queuing new ones.
 */
export async function enqueueCommands(
  rpc: OperatorRpc,
  action: CommandAction,
  target: CommandTarget,
  idempotencyKey: string = newIdempotencyKey(),
): Promise<QueuedCommand[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await enqueueOnce(rpc, action, target, idempotencyKey);
    } catch (error) {
      if (attempt >= ENQUEUE_ATTEMPTS || (error as { retryable?: boolean }).retryable !== true) throw error;
      await sleep(ENQUEUE_RETRY_MS * 2 ** (attempt - 1));
    }
  }
}

async function enqueueOnce(
  rpc: OperatorRpc,
  action: CommandAction,
  target: CommandTarget,
  idempotencyKey: string,
): Promise<QueuedCommand[]> {
  const queued = await rpc<{ id: number; agent_id: number; via_heartbeat: boolean }[]>('enqueue_agent_commands', {
    p_action: action,
    p_agent_name: target.agentName ?? null,
    p_host: target.host ?? null,
    p_idempotency_key: idempotencyKey,
  });
  if (!queued.length) return [];
  // operator_commands names them and checks the caller again: an operator token acts as anon, which
  // may not read agent_commands itself
  const named = new Map(
    (await rpc<OperatorCommandRow[]>('operator_commands', { p_ids: queued.map((command) => command.id) })).map((row) => [row.id, row]),
  );
  return queued.map(({ id, agent_id, via_heartbeat }) => ({ ...(named.get(id) as OperatorCommandRow), agent_id, via_heartbeat }));
}

export interface WaitOptions {
  timeoutMs: number;
  /** How often to read the commands while waiting. */
  pollMs: number;
  /** Called after each read with every command as last read. */
  onPoll?: (commands: QueuedCommand[]) => void;
}

export interface Waited {
  /** every command as last read */
  commands: QueuedCommand[];
  /** whether all of them finished before the time was up */
  finished: boolean;
  /** why the last read failed, when the time ran out on failing reads */
  readError?: Error;
}

/**
 * Reads the commands through operator_commands until every one has finished (FINISHED_COMMAND_STATUSES;
 * a pending one past its expiry by the database's clock counts as expired, commandAt) or the time is
 * up. A failed read is retried at the next poll: only the deadline ends the wait.
 */
export async function waitForCommands(rpc: OperatorRpc, queued: QueuedCommand[], options: WaitOptions): Promise<Waited> {
  const deadline = Date.now() + options.timeoutMs;
  const latest = new Map(queued.map((command) => [command.id, command]));
  let readError: Error | undefined;
  for (;;) {
    const open = [...latest.values()].filter((command) => !isFinished(command.status)).map((command) => command.id);
    if (!open.length) return { commands: [...latest.values()], finished: true };
    if (Date.now() >= deadline) return { commands: [...latest.values()], finished: false, readError };
    await sleep(Math.min(options.pollMs, Math.max(0, deadline - Date.now())));
    try {
      for (const row of await rpc<OperatorCommandRow[]>('operator_commands', { p_ids: open })) {
        const { agent_id, via_heartbeat } = latest.get(row.id) as QueuedCommand;
        latest.set(row.id, commandAt({ ...row, agent_id, via_heartbeat }, Date.parse(row.observed_at)));
      }
      readError = undefined;
    } catch (error) {
      readError = error as Error;
    }
    options.onPoll?.([...latest.values()]);
  }
}

/** Queues the commands and waits for their answers. */
export async function runCommands(
  rpc: OperatorRpc,
  action: CommandAction,
  target: CommandTarget,
  options: WaitOptions & { onQueued?: (commands: QueuedCommand[]) => void },
): Promise<Waited> {
  const queued = await enqueueCommands(rpc, action, target);
  options.onQueued?.(queued);
  return waitForCommands(rpc, queued, options);
}

const outcomeOf = (row: QueuedCommand): CommandOutcome => ({
  commandId: row.id,
  agentId: row.agent_id,
  action: row.action,
  status: row.status,
  result: row.result,
});

function describe(error: { message: string; hint?: string | null }): string {
  return `${error.message}${error.hint ? ` (${error.hint})` : ''}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** An OperatorRpc over a signed-in supabase-js client. */
function clientRpc(client: SupabaseClient): OperatorRpc {
  return async <T>(fn: string, args: Record<string, unknown>) => {
    const { data, error, status } = await client.rpc(fn, args);
    if (error) throw Object.assign(new Error(describe(error)), { retryable: retryableStatus(status) });
    return data as T;
  };
}

/**
 * The process manager for one signed-in client.
 * @example
 * const { startAgent } = createProcessManager(supabase);
 * const outcome = await startAgent('Tweet Scraping Agent'); // { status: 'succeeded', result: 'started (pid 4242)', ... }
 */
export function createProcessManager(client: SupabaseClient, options: ProcessManagerOptions = {}): ProcessManager {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const pollMs = options.pollMs ?? 250;

  const rpc = clientRpc(client);

  // Queues and waits; a refusal rejects at once with the database's reason.
  async function run(action: CommandAction, target: CommandTarget): Promise<Waited> {
    try {
      return await runCommands(rpc, action, target, {
        timeoutMs,
        pollMs,
        onQueued: options.onQueued && ((queued) => options.onQueued?.(queued.map(outcomeOf))),
      });
    } catch (error) {
      const what = target.agentName
        ? `${action} ${target.agentName}`
        : target.host
          ? `${action} all agents on ${target.host}`
          : `${action} all agents`;
      throw new ProcessManagerError('refused', `could not ${what}: ${(error as Error).message}`);
    }
  }

  function failure(outcome: CommandOutcome, agentName: string): ProcessManagerError {
    if (outcome.status === 'expired') {
      return new ProcessManagerError(
        'expired',
        `${outcome.action} ${agentName} expired: ${outcome.result ?? 'no runner claimed it in time (is the runner on its host running?)'}`,
        outcome,
      );
    }
    return new ProcessManagerError('failed', `${outcome.action} ${agentName} failed: ${outcome.result ?? 'no reason given'}`, outcome);
  }

  async function one(action: CommandAction, agentName: string): Promise<CommandOutcome> {
    const { commands, finished } = await run(action, { agentName });
    const outcome = outcomeOf(commands[0]);
    if (!finished) {
      throw new ProcessManagerError(
        'timeout',
        `${action} ${agentName}: no answer from its runner within ${timeoutMs / 1000} s (command ${outcome.commandId} is ${outcome.status}; ` +
          'it expires by itself if no runner claims it)',
        outcome,
      );
    }
    if (outcome.status !== 'succeeded') throw failure(outcome, agentName);
    return outcome;
  }

  return {
    startAgent: (agentName) => one('start', agentName),
    stopAgent: (agentName) => one('stop', agentName),
    restartAgent: (agentName) => one('restart', agentName),

    async startAllAgents(options = {}) {
      const { commands, finished } = await run('start', { host: options.host ?? null });
      const outcomes = commands.map(outcomeOf);
      const open = commands.filter((command) => !isFinished(command.status));
      if (!finished) {
        throw new ProcessManagerError(
          'timeout',
          `start all${options.host ? ` on ${options.host}` : ''}: ${open.length} of ${outcomes.length} agents had no answer from their runner within ${timeoutMs / 1000} s`,
          undefined,
          outcomes,
        );
      }
      const failed = commands.filter((command) => command.status !== 'succeeded');
      if (failed.length) {
        throw new ProcessManagerError(
          failed.some((command) => command.status === 'failed') ? 'failed' : 'expired',
          `start all${options.host ? ` on ${options.host}` : ''}: ${failed.length} of ${outcomes.length} agents did not start: ${failed
            .slice(0, 20)
            .map((command) => `${command.agent_name} ${command.status}: ${command.result ?? 'no reason given'}`)
            .join('; ')}${failed.length > 20 ? '; …' : ''}`,
          outcomeOf(failed[0]),
          outcomes,
        );
      }
      return outcomes;
    },

    async forceStopAgent(agentName, reason) {
      const { error } = await client.rpc('force_agent_status', {
        p_agent_name: agentName,
        p_status: 'stopped',
        p_health: 0,
        p_reason: reason ?? null,
      });
      if (error) throw new ProcessManagerError('refused', `could not force ${agentName} to stopped: ${describe(error)}`);
    },
  };
}
