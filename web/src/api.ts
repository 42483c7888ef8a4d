// Every read and write the dashboard makes, through supabase-js under the signed-in user's session.
// Row-level security decides what that user sees: a non-operator gets no rows, never an error.
import type { SupabaseClient, PostgrestError } from '@supabase/supabase-js';
import { type AgentStatus, IN_FLIGHT_COMMAND_STATUSES } from '../../shared/status.ts';
import {
  AGENT_LIVE_COLUMNS,
  type AgentEventRow,
  type AgentLiveColumn,
  type AgentLiveRow,
  type CommandRow as SharedCommandRow,
  type RunnerLiveRow,
} from '../../shared/rows.ts';

// The columns of agent_status_live the dashboard leaves out: metadata can be 8 kB per agent, and no
// view shows the others. It reads every other column (AGENT_COLUMNS); each row type below is picked by
// its list, so TypeScript refuses a field that is not fetched.
const UNREAD_AGENT_COLUMNS = [
  'metadata',
  'recorded_status',
  'runner_online',
  'inactive_at',
  'seconds_since_heartbeat',
  'down_s',
  'runner_heartbeat_interval_s',
  'unstable_since',
  'warnings_1h',
  'warnings_24h',
  'errors_1h',
  'errors_24h',
] as const satisfies readonly AgentLiveColumn[];
type AgentColumn = Exclude<AgentLiveColumn, (typeof UNREAD_AGENT_COLUMNS)[number]>;
const AGENT_COLUMNS = AGENT_LIVE_COLUMNS.filter(
  (column): column is AgentColumn => !(UNREAD_AGENT_COLUMNS as readonly AgentLiveColumn[]).includes(column),
);
const COMMAND_COLUMNS = [
  'id',
  'agent_id',
  'action',
  'status',
  'requested_by',
  'created_at',
  'expires_at',
  'via_heartbeat',
  'finished_at',
  'result',
] as const;
const RUNNER_COLUMNS = ['id', 'host', 'status', 'last_seen_at', 'stopped_at', 'version', 'pid', 'started_at', 'silent_s'] as const;

/** A row of agent_status_live, in the columns the dashboard reads (AGENT_COLUMNS). */
export type AgentRow = Pick<AgentLiveRow, AgentColumn>;

/** The columns of agent_commands the dashboard reads (COMMAND_COLUMNS). */
export type CommandRow = Pick<SharedCommandRow, (typeof COMMAND_COLUMNS)[number]>;

/** A runner as public.runner_status_live reads it: silent once two of its heartbeat intervals pass. */
export type RunnerRow = Pick<RunnerLiveRow, (typeof RUNNER_COLUMNS)[number]>;

export type EventRow = AgentEventRow;

/** The latest CPU and memory of an agent's process group (public.agent_resources). */
export interface ResourceRow {
  agent_id: number;
  cpu_percent: number;
  memory_bytes: number;
  processes: number;
  sampled_at: string;
}

/** One sample a minute, for the detail page's chart (public.agent_resource_samples). */
export interface ResourceSample {
  minute: string;
  cpu_percent: number;
  memory_bytes: number;
}

/** public.agent_availability: time per status over 24 h, 7 d and 30 d, and the last 24 h as segments. */
export interface Availability {
  until: string;
  windows: Record<'24h' | '7d' | '30d', { seconds: Partial<Record<AgentStatus, number>>; known_s: number; up_percent: number | null }>;
  strip: { from: string; to: string; status: AgentStatus }[];
}

/** A row of public.agent_history: one event, or a run of identical ones folded. */
export interface HistoryRow extends Omit<AgentEventRow, 'id'> {
  id: number;
  oldest_id: number;
  count: number;
  /** the kinds that repeat: one, or two for an alternating run (oldest first) */
  cycle: string[];
  first_at: string;
}

export const HISTORY_FILTERS = ['status', 'problems', 'commands', 'operator'] as const;
export type HistoryFilter = (typeof HISTORY_FILTERS)[number];

/** An operator's log request and, once the runner answered, the lines. */
export interface LogAnswer {
  id: number;
  answered_at: string | null;
  stdout: string[] | null;
  stderr: string[] | null;
  error: string | null;
}

export interface WhoAmI {
  signed_in: boolean;
  operator: boolean;
  email?: string;
}

const EVENT_COLUMNS = 'id,at,kind,source,actor,from_status,to_status,health,message,details';

// Hosted Supabase answers at most 1000 rows per request (max_rows); the rows in view are far fewer.
const PAGE = 1000;

// Reads give up after this long: a request that hangs must become a visible outage, not a frozen
// "data 40 s ago". postgrest-js's own retries (1, 2 and 4 s apart) are off for the same reason: the
// feed's poll loop retries, and says so on screen meanwhile.
const READ_TIMEOUT_MS = 10_000;

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

/** What the list shows: filters and sort, as the URL keeps them (dashboard.ts). */
export interface AgentQuery {
  status: AgentStatus | '';
  /** '' for every host; null for agents without one */
  host: string | null;
  search: string;
  sort: string;
  descending: boolean;
}

/** public.dashboard_agent_page: the rows in view of the matching agents, and the counts beside them. */
export interface AgentPage {
  observed_at: string;
  offset: number;
  /** every agent the user may see */
  total: number;
  /** the agents the filters let through */
  matching: number;
  /** every agent per status (the chips) */
  statuses: Partial<Record<AgentStatus, number>>;
  /** every host an agent names, null for agents without one */
  hosts: (string | null)[];
  /** per runner id, its agents per status */
  runners: Record<string, Partial<Record<AgentStatus, number>>>;
  rows: AgentRow[];
  /** sent back with the next read of the same rows: while it holds, the database skips the counts */
  mark: PageMark;
}

/** What an answer of dashboard_agent_page was made of; opaque to the page. */
export type PageMark = Record<string, unknown>;

/** dashboard_agent_page's answer to a read that sent a mark still true: the rows read again, nothing else changed. */
interface UnchangedPage {
  unchanged: true;
  observed_at: string;
  offset: number;
  rows: AgentRow[];
  mark: PageMark;
}

/**
 * `limit` matching agents from `offset`, in the query's order, with the counts: one call whatever the
 * fleet's size. The database filters, searches, sorts and counts (supabase/schemas/65_reads.sql).
 * With `last`, the page this same read answered before: when nothing it counted changed since, the
 * database only reads its rows again, and the answer is `last` with those rows.
 */
export async function fetchAgentPage(
  client: SupabaseClient,
  query: AgentQuery,
  offset: number,
  limit: number,
  last?: AgentPage,
): Promise<AgentPage> {
  const answer = check(
    'reading agents',
    await client
      .rpc('dashboard_agent_page', {
        p_status: query.status || null,
        p_host: query.host || null,
        p_without_host: query.host === null,
        p_search: query.search.trim() || null,
        p_sort: query.sort,
        p_descending: query.descending,
        p_offset: offset,
        p_limit: limit,
        p_since: last?.mark ?? null,
      })
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as AgentPage | UnchangedPage;
  if (!('unchanged' in answer)) return answer;
  if (!last) throw new RequestError('reading agents', { message: 'the database answered "unchanged" to a first read' });
  return { ...last, observed_at: answer.observed_at, offset: answer.offset, rows: answer.rows, mark: answer.mark };
}

/**
 * The agents a runner manages whose runner is away (silent, offline or stopped), on one host or all:
 * what Start all warns about. At most 1,000; the warning names five.
 */
export async function fetchAgentsWithRunnerAway(client: SupabaseClient, host?: string): Promise<AgentRow[]> {
  let query = client.from('agent_status_live').select(AGENT_COLUMNS.join(',')).not('runner_id', 'is', null).neq('runner_status', 'online');
  if (host !== undefined) query = query.eq('host', host);
  return check(
    'reading the agents whose runner is away',
    await query.order('agent_name').limit(PAGE).retry(false).abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as unknown as AgentRow[];
}

/** One agent by name (its detail page), or null when it is not visible. */
export async function fetchAgent(client: SupabaseClient, name: string): Promise<AgentRow | null> {
  const rows = check(
    'reading the agent',
    await client
      .from('agent_status_live')
      .select(AGENT_COLUMNS.join(','))
      .eq('agent_name', name)
      .retry(false)
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as unknown as AgentRow[];
  return rows[0] ?? null;
}

/**
 * The in-flight commands of these agents and those created since `since` (a database timestamp) so
 * outcomes show; newest first.
 */
export async function fetchCommands(client: SupabaseClient, since: string, agentIds: number[]): Promise<CommandRow[]> {
  if (!agentIds.length) return [];
  return check(
    'reading commands',
    await client
      .from('agent_commands')
      .select(COMMAND_COLUMNS.join(','))
      .in('agent_id', agentIds)
      .or(`status.in.(${IN_FLIGHT_COMMAND_STATUSES.join(',')}),created_at.gte."${since}"`)
      .order('id', { ascending: false })
      .limit(PAGE)
      .retry(false)
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as unknown as CommandRow[];
}

export async function fetchRunners(client: SupabaseClient): Promise<RunnerRow[]> {
  return check(
    'reading runners',
    await client
      .from('runner_status_live')
      .select(RUNNER_COLUMNS.join(','))
      .order('host')
      .retry(false)
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as unknown as RunnerRow[];
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

/** The resource figures of these agents. */
export async function fetchResources(client: SupabaseClient, agentIds: number[]): Promise<ResourceRow[]> {
  if (!agentIds.length) return [];
  return check(
    'reading CPU and memory',
    await client
      .from('agent_resources')
      .select('agent_id,cpu_percent,memory_bytes,processes,sampled_at')
      .in('agent_id', agentIds)
      .retry(false)
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as ResourceRow[];
}

/** An agent's samples of the last 24 hours, oldest first. */
export async function fetchResourceSamples(client: SupabaseClient, agentId: number): Promise<ResourceSample[]> {
  return check(
    'reading CPU and memory history',
    await client
      .from('agent_resource_samples')
      .select('minute,cpu_percent,memory_bytes')
      .eq('agent_id', agentId)
      .order('minute')
      .limit(1440)
      .retry(false)
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as ResourceSample[];
}

export async function fetchAvailability(client: SupabaseClient, agentName: string): Promise<Availability> {
  return check(
    'reading availability',
    await client.rpc('agent_availability', { p_agent_name: agentName }).abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as Availability;
}

/** One page of an agent's history, newest first, runs folded; `before` is the previous page's last oldest_id. */
export async function fetchHistory(
  client: SupabaseClient,
  agentName: string,
  options: { before?: number; filter?: HistoryFilter | ''; limit?: number } = {},
): Promise<HistoryRow[]> {
  return check(
    'reading history',
    await client
      .rpc('agent_history', {
        p_agent_name: agentName,
        p_before_id: options.before ?? null,
        p_kinds: options.filter || null,
        p_limit: options.limit ?? 50,
      })
      .abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as HistoryRow[];
}

/** Asks the agent's runner for its last `lines` lines; returns the request id. */
export async function requestLogs(client: SupabaseClient, agentName: string, lines: number): Promise<number> {
  return check(
    `asking for the logs of ${agentName}`,
    await client.rpc('request_agent_logs', { p_agent_name: agentName, p_lines: lines }).abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as number;
}

export async function fetchLogAnswer(client: SupabaseClient, requestId: number): Promise<LogAnswer> {
  const rows = check(
    'reading the logs',
    await client.rpc('operator_agent_logs', { p_request_id: requestId }).abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS)),
  ) as LogAnswer[];
  return rows[0];
}

/** An operator's timeouts for an agent (0: back to the derived default); recorded in its history. */
export async function setTimeouts(
  client: SupabaseClient,
  agentName: string,
  timeouts: { heartbeat?: number; activity?: number },
): Promise<void> {
  check(
    `setting the timeouts of ${agentName}`,
    await client.rpc('set_agent_timeouts', {
      p_agent_name: agentName,
      p_heartbeat_timeout_s: timeouts.heartbeat ?? null,
      p_activity_timeout_s: timeouts.activity ?? null,
    }),
  );
}

export async function whoami(client: SupabaseClient): Promise<WhoAmI> {
  return check('asking who is signed in', await client.rpc('whoami').abortSignal(AbortSignal.timeout(READ_TIMEOUT_MS))) as WhoAmI;
}
