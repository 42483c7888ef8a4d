// The runner's only way to the database: the token-checked SQL functions, through PostgREST with the
// publishable (anon) key and the runner's own token as p_token. Never a service or secret key.
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import type { HeartbeatRequest } from '../../shared/api/heartbeat.ts';
import type { Report } from '../../shared/api/report.ts';
import { keepAliveFetch } from './http-fetch.ts';
import type { Command } from '../../shared/api/command.ts';
import type { ResourceSample } from './resources.ts';

// A request that hangs must not hang a loop: every call gives up after this and is retried.
const REQUEST_TIMEOUT_MS = 10_000;

/** A failed call of the runner's SQL functions, with the SQL error's code and hint when the database answered. */
export class RunnerCallError extends Error {
  constructor(
    readonly fn: string,
    /** The database's own message, without the function name and hint */
    readonly reason: string,
    /** SQLSTATE or PostgREST code; empty when the request never got an answer */
    readonly code: string,
    readonly status: number,
    readonly hint?: string,
  ) {
    super(`${fn}: ${reason}${hint ? ` (${hint})` : ''}`);
    this.name = 'RunnerCallError';
  }

  /** Network trouble or a server error: worth retrying. A refusal (bad input, bad token) is not. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 408 || this.status === 429 || this.code === '';
  }
}

/** A command as runner_claim_commands returns it: claimed, so its status goes without saying. */
export type ClaimedCommand = Omit<Command, 'status'>;

/** An operator's request for an agent's last log lines (request_agent_logs). */
export interface LogRequest {
  id: number;
  agent_name: string;
  lines: number;
}

/**
 * How runner_report_batch answered one report: applied (the agent's state after it), refused for
 * good, or not applied now (send it again, with the agent's reports after it).
 */
export type ReportOutcome = { agent: Record<string, unknown> } | { error: ItemError } | { retry: ItemError };

/** An error the database answered for one item of a batch. */
export interface ItemError {
  sqlstate: string | null;
  message: string;
  hint: string | null;
}

/** What runner_heartbeat answers: the agents' heartbeats' answers in order, and what waits for the runner. */
export interface RunnerHeartbeatAnswer {
  runner_id: string;
  relayed: number;
  heartbeats: { agent?: Record<string, unknown>; error?: ItemError }[];
  commands_waiting: boolean;
  log_requests_waiting: boolean;
}

export interface RegisteredAgent {
  name: string;
  heartbeat_timeout_s?: number;
  metadata?: Record<string, unknown>;
}

export interface ApiOptions {
  url: string;
  anonKey: string;
  token: string;
}

/** Calls the runner's SQL functions. */
export class RunnerApi {
  readonly client: SupabaseClient;
  private readonly token: string;

  /** sockets: the keep-alive connections this instance may hold to the API, its own. */
  constructor(options: ApiOptions, sockets = 4) {
    this.token = options.token;
    this.client = createClient(options.url, options.anonKey, {
      // The runner never signs in: its identity is the token it passes to each function. Without
      // this, supabase-js asks its auth client for a session before every request (locks, promises),
      // which was about a fifth of the CPU of one poll.
      accessToken: async () => options.anonKey,
      realtime: { transport: WebSocket as never },
      global: { fetch: keepAliveFetch(REQUEST_TIMEOUT_MS, sockets) },
    });
  }

  private async call<T>(fn: string, args: Record<string, unknown>): Promise<T> {
    const { data, error, status } = await this.client.rpc(fn, { p_token: this.token, ...args });
    if (error) {
      throw new RunnerCallError(fn, error.message || 'request failed', error.code ?? '', status ?? 0, error.hint || undefined);
    }
    return data as T;
  }

  /** Registers the agents; only the instance holding the host's lease may. */
  register(
    agents: RegisteredAgent[],
    version: string,
    pid: number,
    instance: string,
  ): Promise<{ runner_id: string; host: string; agents: string[] }> {
    return this.call('runner_register', { p_agents: agents, p_version: version, p_pid: pid, p_instance: instance });
  }

  /**
   * The runner's regular call. intervalS: how often the runner heartbeats (the database reads it
   * silent after two intervals); agents: the supervised processes alive now; heartbeats: what its
   * agents sent through the agent channel since, applied as theirs (at most 50).
   */
  heartbeat(
    agents: { name: string; pid: number }[] | null,
    intervalS: number,
    heartbeats: HeartbeatRequest[],
  ): Promise<RunnerHeartbeatAnswer> {
    return this.call('runner_heartbeat', {
      p_agents: agents,
      p_interval_s: intervalS,
      ...(heartbeats.length && { p_heartbeats: heartbeats }),
    });
  }

  /** Takes the host's lease for this runner instance; refused while another instance is live, unless takeover. */
  lease(
    instance: string,
    pid: number,
    takeover: boolean,
  ): Promise<{ runner_id: string; took_over: boolean; previous_instance: string | null }> {
    return this.call('runner_lease', { p_instance: instance, p_pid: pid, p_takeover: takeover });
  }

  /** Claims pending commands; refused once another instance took the host's lease. */
  claim(limit: number, instance: string): Promise<ClaimedCommand[]> {
    return this.call('runner_claim_commands', { p_limit: limit, p_instance: instance });
  }

  complete(commandId: number, succeeded: boolean, result: string, instance: string): Promise<unknown> {
    return this.call('runner_complete_command', {
      p_command_id: commandId,
      p_succeeded: succeeded,
      p_result: result.slice(0, 4000),
      p_instance: instance,
    });
  }

  /**
   * Reports of any of its agents (agent_report's arguments by name) in one call, each applied in its
   * own subtransaction; answers each in order (runner_report_batch).
   */
  reportBatch(reports: Report[]): Promise<ReportOutcome[]> {
    return this.call('runner_report_batch', { p_reports: reports });
  }

  reportResources(samples: ResourceSample[]): Promise<number> {
    return this.call('runner_report_resources', { p_samples: samples });
  }

  claimLogRequests(): Promise<LogRequest[]> {
    return this.call('runner_claim_log_requests', {});
  }

  answerLogRequest(id: number, answer: { stdout?: string[]; stderr?: string[]; error?: string }): Promise<unknown> {
    return this.call('runner_answer_log_request', {
      p_request_id: id,
      p_stdout: answer.stdout ?? null,
      p_stderr: answer.stderr ?? null,
      p_error: answer.error?.slice(0, 4000) ?? null,
    });
  }

  /** A supervised agent's own heartbeat, from the agent channel; answers the agent's row. */
  agentHeartbeat(heartbeat: HeartbeatRequest): Promise<Record<string, unknown>> {
    return this.call('agent_heartbeat', sqlArguments(heartbeat));
  }

  offline(instance: string): Promise<unknown> {
    return this.call('runner_offline', { p_instance: instance });
  }
}

// A request's fields as the SQL function's arguments of the same names (last_activity is p_activity),
// absent ones left to the function's defaults: what the API gains, the channel forwards unchanged.
function sqlArguments(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields)
      .filter(([, value]) => value !== undefined && value !== null)
      .map(([key, value]) => [key === 'last_activity' ? 'p_activity' : `p_${key}`, value]),
  );
}
