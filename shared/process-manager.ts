// The seed's process-manager.ts (startAgent, stopAgent, startAllAgents), plus restartAgent and
// forceStopAgent, over any supabase-js client signed in as an operator: a web app's or Node's. A
// command is queued in the database (enqueue_agent_commands), the agent's runner carries it out, and
// the promise settles with the runner's answer: resolved with the outcome, rejected with the reason
// (refused, failed, expired, or no answer in time). The dashboard's buttons go through this module.
import type { SupabaseClient } from '@supabase/supabase-js';
import type { CommandAction, CommandStatus } from './status.ts';

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

const FINISHED: readonly CommandStatus[] = ['succeeded', 'failed', 'expired'];

interface CommandRecord {
  id: number;
  agent_id: number;
  action: CommandAction;
  status: CommandStatus;
  result: string | null;
}

const outcomeOf = (row: CommandRecord): CommandOutcome => ({
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

/**
 * The process manager for one signed-in client.
 * @example
 * const { startAgent } = createProcessManager(supabase);
 * const outcome = await startAgent('Tweet Scraping Agent'); // { status: 'succeeded', result: 'started (pid 4242)', ... }
 */
export function createProcessManager(client: SupabaseClient, options: ProcessManagerOptions = {}): ProcessManager {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const pollMs = options.pollMs ?? 250;

  async function enqueue(action: CommandAction, agentName: string | null, host: string | null = null): Promise<CommandOutcome[]> {
    const { data, error } = await client.rpc('enqueue_agent_commands', { p_action: action, p_agent_name: agentName, p_host: host });
    if (error) {
      const what =
        agentName !== null ? `${action} ${agentName}` : host !== null ? `${action} all agents on ${host}` : `${action} all agents`;
      throw new ProcessManagerError('refused', `could not ${what}: ${describe(error)}`);
    }
    const queued = (data as CommandRecord[]).map(outcomeOf);
    options.onQueued?.(queued);
    return queued;
  }

  // Reads the commands until all are finished or the time is up; returns them as last read.
  async function settle(queued: CommandOutcome[]): Promise<{ outcomes: CommandOutcome[]; finished: boolean }> {
    const deadline = Date.now() + timeoutMs;
    const latest = new Map(queued.map((outcome) => [outcome.commandId, outcome]));
    for (;;) {
      const open = [...latest.values()].filter((outcome) => !FINISHED.includes(outcome.status)).map((outcome) => outcome.commandId);
      if (!open.length) return { outcomes: [...latest.values()], finished: true };
      if (Date.now() >= deadline) return { outcomes: [...latest.values()], finished: false };
      await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())));
      // in chunks: an id list in the query string has to stay within URL limits on a large fleet
      for (let i = 0; i < open.length; i += 200) {
        const { data, error } = await client
          .from('agent_commands')
          .select('id,agent_id,action,status,result')
          .in('id', open.slice(i, i + 200));
        // a failed read is retried at the next poll; only the deadline ends the wait
        if (error) continue;
        for (const row of data as CommandRecord[]) latest.set(row.id, outcomeOf(row));
      }
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
    const [queued] = await enqueue(action, agentName);
    const { outcomes, finished } = await settle([queued]);
    const outcome = outcomes[0];
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
      const queued = await enqueue('start', null, options.host ?? null);
      const { outcomes, finished } = await settle(queued);
      const open = outcomes.filter((outcome) => !FINISHED.includes(outcome.status));
      if (!finished) {
        throw new ProcessManagerError(
          'timeout',
          `start all${options.host ? ` on ${options.host}` : ''}: ${open.length} of ${outcomes.length} agents had no answer from their runner within ${timeoutMs / 1000} s`,
          undefined,
          outcomes,
        );
      }
      const failed = outcomes.filter((outcome) => outcome.status !== 'succeeded');
      if (failed.length) {
        const { data } = await client
          .from('agent_status')
          .select('id,agent_name')
          .in(
            'id',
            failed.slice(0, 20).map((outcome) => outcome.agentId),
          );
        const names = new Map((data ?? []).map((row: { id: number; agent_name: string }) => [row.id, row.agent_name]));
        throw new ProcessManagerError(
          failed.some((outcome) => outcome.status === 'failed') ? 'failed' : 'expired',
          `start all${options.host ? ` on ${options.host}` : ''}: ${failed.length} of ${outcomes.length} agents did not start: ${failed
            .slice(0, 20)
            .map(
              (outcome) =>
                `${names.get(outcome.agentId) ?? `agent ${outcome.agentId}`} ${outcome.status}: ${outcome.result ?? 'no reason given'}`,
            )
            .join('; ')}${failed.length > 20 ? '; …' : ''}`,
          failed[0],
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
