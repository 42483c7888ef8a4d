// How the functions reach Postgres, in one place. Agents' heartbeats and reports go over a direct
// connection (SUPABASE_DB_URL, postgres.js, prepare: false for Supabase's transaction pooler), with
// concurrent heartbeats batched into one statement: at 32 clients `npm run bench` measured this path
// at 0.57-0.84 of pgbench on the same database, PostgREST (one statement per heartbeat) at about 0.3
// (docs/api.md). Operator commands go through PostgREST with the caller's own JWT, so Postgres sees
// the signed-in user and applies its operator check and RLS.
import postgres from 'npm:postgres@3.4.9';
import { createClient } from 'npm:@supabase/supabase-js@2.109.0';
import type { AgentState } from '../../../shared/api/agent.ts';
import type { Command, CommandRequest } from '../../../shared/api/command.ts';
import type { Report } from '../../../shared/api/report.ts';
import type { HeartbeatRequest } from '../../../shared/api/heartbeat.ts';
import { ApiError, fromSqlError, UNAVAILABLE_HINT } from './errors.ts';
import { Batcher, BatcherFull } from './batcher.ts';

function env(name: string): string {
  const value = Deno.env.get(name);
  if (!value) {
    // A deployment mistake, not the caller's: the log says what to set, the caller gets a 503.
    console.error(
      `${name} is not set; the agent-status functions need SUPABASE_DB_URL, SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY`,
    );
    throw new ApiError('unavailable', 'the status service is not configured', { hint: 'Tell its operator to check the function logs.' });
  }
  return value;
}

// Connections per function instance; as many heartbeat batches can be in flight at once.
const POOL = Number(Deno.env.get('AGENT_STATUS_DB_POOL') ?? 4);
// Every database call gives up after this and answers 503 (retry with backoff) instead of holding
// the caller's request open: a /command once waited 15 s on a locked row, and its client retried.
const DB_TIMEOUT_MS = Number(Deno.env.get('AGENT_STATUS_DB_TIMEOUT_MS') ?? 5000);

function timedOut(what: string): ApiError {
  return new ApiError('unavailable', `the status database did not answer the ${what} within ${DB_TIMEOUT_MS / 1000} s`, {
    hint: UNAVAILABLE_HINT,
  });
}

/** The query's result, or a timeout error after `ms`; a single query is cancelled on the server then. */
async function withTimeout<T>(what: string, query: Promise<T> & { cancel?: () => unknown }, ms = DB_TIMEOUT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      query.cancel?.();
      reject(timedOut(what));
    }, ms);
  });
  try {
    return await Promise.race([query, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

let client: postgres.Sql | undefined;
function sql(): postgres.Sql {
  client ??= postgres(env('SUPABASE_DB_URL'), {
    prepare: false,
    max: POOL,
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: () => {},
  });
  return client;
}

// postgres.js raises PostgresError (with the SQLSTATE in `code`) for the server's errors and
// plain errors (ECONNREFUSED, CONNECT_TIMEOUT, ...) for the connection's.
function fromPostgres(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const e = error as { name?: string; code?: string; message?: string; hint?: string };
  if (e?.name === 'PostgresError') return fromSqlError(e.code, e.message ?? 'database error', e.hint, error);
  console.error('database unreachable:', e?.message ?? error);
  return new ApiError('unavailable', 'the status database is unreachable', { hint: UNAVAILABLE_HINT, cause: error });
}

type HeartbeatItem = HeartbeatRequest & { token: string | null };
type BatchAnswer = { agent: AgentState } | { error: { sqlstate: string; message: string; hint: string | null } };

const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock: run the batch again

const heartbeats = new Batcher<HeartbeatItem, BatchAnswer>(
  async (items) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const [row] = await withTimeout('heartbeats', sql()`select public.agent_heartbeat_batch(${sql().json(items)}) as answers`);
        return row.answers as BatchAnswer[];
      } catch (error) {
        if (attempt >= 3 || !RETRYABLE.has((error as { code?: string }).code ?? '')) throw error;
      }
    }
  },
  // 50: agent_heartbeat_batch's own limit. Beyond 2000 waiting, an answer would come after the
  // callers' timeouts anyway; refusing at once lets them back off instead.
  { maxBatch: 50, maxInFlight: POOL, maxWaiting: 2000 },
);

/** Applies one heartbeat (batched with concurrent ones) and answers the agent's new state. */
export async function applyHeartbeat(token: string | null, heartbeat: HeartbeatRequest): Promise<AgentState> {
  let answer: BatchAnswer;
  try {
    answer = await heartbeats.submit({ ...heartbeat, token });
  } catch (error) {
    if (error instanceof BatcherFull)
      throw new ApiError('unavailable', 'too many heartbeats are waiting for the database', { hint: UNAVAILABLE_HINT });
    throw fromPostgres(error);
  }
  if ('error' in answer) throw fromSqlError(answer.error.sqlstate, answer.error.message, answer.error.hint);
  return answer.agent;
}

/** Applies reports in order, in one transaction: all of them or, on the first error, none. */
export async function applyReports(token: string | null, reports: Report[]): Promise<AgentState[]> {
  try {
    // The server gives up first: each statement may take only what is left of the budget, so a
    // report answered 503 is never applied afterwards (with the timer alone, a report waiting on a
    // locked row was committed a moment after its 503). The timer, a second later, covers a
    // connection that stopped answering.
    const deadline = Date.now() + DB_TIMEOUT_MS;
    return await withTimeout(
      'reports',
      sql().begin(async (tx) => {
        const states: AgentState[] = [];
        for (const r of reports) {
          await tx.unsafe(`set local statement_timeout = ${Math.max(1, deadline - Date.now())}`);
          const [row] = await tx`
          select agent_name, status, health, last_heartbeat, last_error, last_activity, status_reason,
                 started_at, stopped_at, stale_at, updated_at
          from public.agent_report(${token}, ${r.agent_name}, ${r.event}, ${r.message ?? null}, ${r.health ?? null},
                                   ${r.last_activity ?? null}, ${r.pid ?? null}, ${r.exit_code ?? null},
                                   ${r.exit_signal ?? null}, ${r.details == null ? null : tx.json(r.details as postgres.JSONValue)})`;
          states.push(toAgentState(row));
        }
        return states;
      }),
      DB_TIMEOUT_MS + 1000,
    );
  } catch (error) {
    // 57014: the statement_timeout above
    throw (error as { code?: string }).code === '57014' ? timedOut('reports') : fromPostgres(error);
  }
}

function toAgentState(row: Record<string, unknown>): AgentState {
  const time = (value: unknown) => (value instanceof Date ? value.toISOString() : (value as string | null));
  return {
    agent_name: row.agent_name as string,
    status: row.status as AgentState['status'],
    health: row.health as number,
    last_heartbeat: time(row.last_heartbeat),
    last_error: row.last_error as string | null,
    last_activity: row.last_activity as string | null,
    status_reason: row.status_reason as string | null,
    started_at: time(row.started_at),
    stopped_at: time(row.stopped_at),
    stale_at: time(row.stale_at),
    updated_at: time(row.updated_at) as string,
  };
}

const COMMAND_COLUMNS = 'id, agent_id, action, status, requested_by, created_at, expires_at, agent_status(agent_name)';

/**
 * Enqueues commands as the caller: a signed-in user's JWT is passed on to PostgREST as it came, an
 * operator token is passed to the SQL function, which checks it before anything else. The same
 * idempotency key from the same caller answers the first request's commands instead of new ones.
 */
export async function enqueueCommands(
  caller: { jwt: string } | { operatorToken: string },
  request: CommandRequest,
  idempotencyKey: string | null,
): Promise<Command[]> {
  const url = env('SUPABASE_URL');
  const anonKey = env('SUPABASE_ANON_KEY');
  const key = 'jwt' in caller ? anonKey : env('SUPABASE_SERVICE_ROLE_KEY');
  const rest = createClient(url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: { headers: { Authorization: `Bearer ${'jwt' in caller ? caller.jwt : key}` } },
  });
  const { data, error } = await rest
    .rpc('enqueue_agent_commands', {
      p_action: request.action,
      p_agent_name: request.agent_name ?? null,
      p_host: request.host ?? null,
      p_operator_token: 'operatorToken' in caller ? caller.operatorToken : null,
      p_idempotency_key: idempotencyKey,
    })
    .select(COMMAND_COLUMNS)
    .abortSignal(AbortSignal.timeout(DB_TIMEOUT_MS));
  if (error) {
    if (/^PGRST3/.test(error.code ?? '')) {
      throw new ApiError('unauthorized', 'the session token is invalid or expired', { hint: 'Sign in again, or send an operator token.' });
    }
    if (!error.code && /abort|timeout/i.test(error.message)) throw timedOut('command');
    if (!error.code) {
      console.error('PostgREST unreachable:', error.message);
      throw new ApiError('unavailable', 'the status database is unreachable', { hint: UNAVAILABLE_HINT });
    }
    throw fromSqlError(error.code, error.message, error.hint);
  }
  return (data as unknown as (Omit<Command, 'agent_name'> & { agent_status: { agent_name: string } })[]).map(
    ({ agent_status, ...command }) => ({ ...command, agent_name: agent_status.agent_name }),
  );
}
