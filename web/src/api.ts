// Every read and write the dashboard makes, through supabase-js under the signed-in user's session.
// Row-level security decides what that user sees: a non-operator gets no rows, never an error.
import type { SupabaseClient, PostgrestError } from '@supabase/supabase-js';
import type { AgentStatus, CommandAction, CommandStatus } from '../../shared/status.ts';
import type { AgentEventRow, AgentLiveRow, CommandRow as SharedCommandRow } from '../../shared/rows.ts';

/** A row of agent_status_live. */
export type AgentRow = AgentLiveRow;

/** The columns of agent_commands the dashboard reads (COMMAND_COLUMNS). */
export type CommandRow = Pick<
  SharedCommandRow,
  'id' | 'agent_id' | 'action' | 'status' | 'requested_by' | 'created_at' | 'finished_at' | 'result'
>;

export interface RunnerRow {
  id: string;
  host: string;
  status: string;
  last_seen_at: string;
  version: string | null;
}

export type EventRow = AgentEventRow;

export interface WhoAmI {
  signed_in: boolean;
  operator: boolean;
  email?: string;
}

// metadata is left out: it can be 8 kB per agent and the table does not show it.
const AGENT_COLUMNS =
  'id,agent_name,status,health,last_heartbeat,last_error,last_activity,last_activity_at,status_source,status_reason,' +
  'status_changed_at,host,runner_id,runner_online,pid,started_at,stopped_at,exit_code,exit_signal,heartbeat_timeout_s,' +
  'stale_at,observed_at,uptime_s';
const COMMAND_COLUMNS = 'id,agent_id,action,status,requested_by,created_at,finished_at,result';
const EVENT_COLUMNS = 'id,at,kind,source,actor,from_status,to_status,health,message,details';

// Hosted Supabase answers at most 1000 rows per request (max_rows), so larger fleets come in pages.
const PAGE = 1000;

// Reads give up after this long: a request that hangs must become a visible outage, not a frozen
// "data 40 s ago". postgrest-js's own retries (1, 2 and 4 s apart) are off for the same reason: the
// feed's poll loop retries, and says so on screen meanwhile.
const READ_TIMEOUT_MS = 10_000;

/** Commands still waiting for a runner: their agent's row shows them as in flight. */
export const IN_FLIGHT: readonly CommandStatus[] = ['pending', 'claimed'];
/** How long a finished command's outcome stays on its agent's row. */
export const COMMAND_OUTCOME_SECONDS = 15 * 60;

/** A failed dashboard request, with the server's message and hint kept together for the person reading it. */
export class RequestError extends Error {
  constructor(what: string, error: PostgrestError | { message: string; hint?: string | null }) {
    super(`${what}: ${error.message}${'hint' in error && error.hint ? ` (${error.hint})` : ''}`);
    this.name = 'RequestError';
  }
}

function check<T>(what: string, answer: { data: T | null; error: PostgrestError | null }): T {
  if (answer.error) throw new RequestError(what, answer.error);
  return answer.data as T;
}

// Reads every page of a query ordered by a unique key; `page(from, to)` runs one range of it.
async function allPages<T>(
  what: string,
  page: (from: number, to: number) => PromiseLike<{ data: unknown; error: PostgrestError | null }>,
): Promise<T[]> {
  const rows: T[] = [];
  for (let from = 0; ; from += PAGE) {
    const answer = await page(from, from + PAGE - 1);
    const batch = check(what, answer as { data: T[] | null; error: PostgrestError | null });
    rows.push(...batch);
    if (batch.length < PAGE) return rows;
  }
}

/**
 * Every agent, or with `changes` only those written since a time or whose stale deadline has passed
 * by another (the live view turns those stale at read time without writing them).
 */
export function fetchAgents(client: SupabaseClient, changes?: { writtenSince: string; staleBy: string }): Promise<AgentRow[]> {
  return allPages('reading agents', (from, to) => {
    let query = client.from('agent_status_live').select(AGENT_COLUMNS);
    if (changes) query = query.or(`updated_at.gte."${changes.writtenSince}",stale_at.lte."${changes.staleBy}"`);
    return query.order('id').range(from, to).retry(false).abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS));
  });
}

/** Commands in flight, and those created since `since` (a database timestamp) so outcomes show; newest first. */
export function fetchCommands(client: SupabaseClient, since: string): Promise<CommandRow[]> {
  // Start all on a large fleet queues one command per agent, so this can exceed one page too.
  return allPages('reading commands', (from, to) =>
    client
      .from('agent_commands')
      .select(COMMAND_COLUMNS)
      .or(`status.in.(${IN_FLIGHT.join(',')}),created_at.gte."${since}"`)
      .order('id', { ascending: false })
      .range(from, to)
      .retry(false)
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  );
}

export async function fetchRunners(client: SupabaseClient): Promise<RunnerRow[]> {
  return check(
    'reading runners',
    await client
      .from('runners')
      .select('id,host,status,last_seen_at,version')
      .order('host')
      .retry(false)
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as RunnerRow[];
}

/** An agent's history, newest first; only events after `afterId` when given. */
export async function fetchEvents(client: SupabaseClient, agentId: number, afterId = 0, limit = 300): Promise<EventRow[]> {
  return check(
    'reading history',
    await client
      .from('agent_events')
      .select(EVENT_COLUMNS)
      .eq('agent_id', agentId)
      .gt('id', afterId)
      .order('id', { ascending: false })
      .limit(limit)
      .retry(false)
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as unknown as EventRow[];
}

/** The newest event holding the log lines the runner captured, however old. */
export async function fetchLastLogTail(client: SupabaseClient, agentId: number): Promise<EventRow | null> {
  const rows = check(
    'reading log lines',
    await client
      .from('agent_events')
      .select(EVENT_COLUMNS)
      .eq('agent_id', agentId)
      .not('details->log_tail', 'is', null)
      .order('id', { ascending: false })
      .limit(1)
      .retry(false)
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as unknown as EventRow[];
  return rows[0] ?? null;
}

export async function whoami(client: SupabaseClient): Promise<WhoAmI> {
  return check('asking who is signed in', await client.rpc('whoami').abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS))) as WhoAmI;
}

/**
 * Queues a command through the one SQL function every client uses; the database fills in who asked,
 * the expiry, and refuses unmanaged agents.
 */
export async function sendCommand(client: SupabaseClient, agentName: string, action: CommandAction): Promise<void> {
  check(`sending ${action}`, await client.rpc('enqueue_agent_commands', { p_action: action, p_agent_name: agentName }));
}

export async function startAll(client: SupabaseClient): Promise<number> {
  const rows = check(
    'sending start to all agents',
    await client.rpc('enqueue_agent_commands', { p_action: 'start' satisfies CommandAction }),
  ) as unknown[];
  return rows.length;
}

/** Sets the status in the database only; the runner and the process are not involved. */
export async function forceStopped(client: SupabaseClient, agentName: string, reason: string): Promise<void> {
  check(
    `forcing ${agentName} to stopped`,
    await client.rpc('force_agent_status', {
      p_agent_name: agentName,
      p_status: 'stopped' satisfies AgentStatus,
      p_health: 0,
      p_reason: reason,
    }),
  );
}
