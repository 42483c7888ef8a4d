// How the functions reach Postgres, in one place. Agents' heartbeats and reports go over the
// project's transaction pooler (AGENT_STATUS_DB_URL, a secret of ours: SUPABASE_DB_URL is the direct,
// unpooled address and SUPABASE_* secrets cannot be set), a small postgres.js pool per isolate, with
// concurrent heartbeats batched into one statement: at 32 clients `npm run bench` measured this path
// at 0.57-0.84 of pgbench on the same database, PostgREST (one statement per heartbeat) at about 0.3
// (docs/api.md). Operator commands go through PostgREST with the caller's own identity (session JWT,
// or operator token with the publishable key), so Postgres applies its own operator check.
import postgres from 'npm:postgres@3.4.9';
import { createClient, type PostgrestError } from 'npm:@supabase/supabase-js@2.109.0';
import type { AgentState } from '../../../shared/api/agent.ts';
import { Command, type CommandRequest } from '../../../shared/api/command.ts';
import { enqueueCommands as enqueueShared, type OperatorRpc } from '../../../shared/process-manager.ts';
import type { Report } from '../../../shared/api/report.ts';
import type { HeartbeatRequest } from '../../../shared/api/heartbeat.ts';
import type { BadgeFacts } from '../../../shared/badge.ts';
import type { MetricsSnapshot } from '../../../shared/metrics.ts';
import { ApiError, fromSqlError, UNAVAILABLE_HINT } from './errors.ts';
import { Batcher, BatcherFull } from './batcher.ts';
import { GuardedPool, PoolDeadlineExceeded, reconnectBackoff } from '../../../shared/guarded-pool.ts';

// A deployment mistake, not the caller's: the log says what to set, the caller gets a 503.
function notConfigured(what: string): ApiError {
  console.error(
    `${what} is not set; the agent-status functions need AGENT_STATUS_DB_URL (the pooler's transaction-mode address; SUPABASE_DB_URL is used without it), SUPABASE_URL and the project's publishable key (SUPABASE_PUBLISHABLE_KEYS, or the legacy SUPABASE_ANON_KEY)`,
  );
  return new ApiError('unavailable', 'the status service is not configured', { hint: 'Tell its operator to check the function logs.' });
}

function env(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw notConfigured(name);
  return value;
}

/**
 * The project's publishable key: the new one (SUPABASE_PUBLISHABLE_KEYS, a JSON object of named keys,
 * "default" first) or else the legacy SUPABASE_ANON_KEY, so a project works before, during and after
 * its move to the new keys. No function needs a secret key.
 */
function publishableKey(): string {
  const named = Deno.env.get('SUPABASE_PUBLISHABLE_KEYS');
  if (named) {
    try {
      const keys = JSON.parse(named) as Record<string, unknown>;
      const key = keys.default ?? Object.values(keys)[0];
      if (typeof key === 'string' && key) return key;
    } catch {
      console.error('SUPABASE_PUBLISHABLE_KEYS is not a JSON object of named keys; using SUPABASE_ANON_KEY');
    }
  }
  const legacy = Deno.env.get('SUPABASE_ANON_KEY');
  if (!legacy) throw notConfigured('SUPABASE_PUBLISHABLE_KEYS (or SUPABASE_ANON_KEY)');
  return legacy;
}

// Connections per function instance; at most as many heartbeat batches in flight at once (one as a
// rule, see _shared/batcher.ts; more only for full or slow batches). Small: the
// platform runs many isolates, each with its own pool, and the batcher makes one connection carry
// many heartbeats (docs/api.md has the connection budget).
const POOL = Number(Deno.env.get('AGENT_STATUS_DB_POOL') ?? 2);
// Every database call gives up after this and answers 503 (retry with backoff) instead of holding
// the caller's request open: a /command once waited 15 s on a locked row, and its client retried.
const DB_TIMEOUT_MS = Number(Deno.env.get('AGENT_STATUS_DB_TIMEOUT_MS') ?? 5000);

function timedOut(what: string): ApiError {
  return new ApiError('unavailable', `the status database did not answer the ${what} within ${DB_TIMEOUT_MS / 1000} s`, {
    hint: UNAVAILABLE_HINT,
  });
}

/**
 * The database URL: AGENT_STATUS_DB_URL, the project's pooler in transaction mode (Supavisor, port
 * 6543), or else SUPABASE_DB_URL, the direct address every function gets, with a warning, since many
 * isolates on it exhaust a small project's connection limit.
 */
function databaseUrl(): string {
  const pooled = Deno.env.get('AGENT_STATUS_DB_URL');
  if (pooled) return pooled;
  const direct = env('SUPABASE_DB_URL');
  console.warn(
    'AGENT_STATUS_DB_URL is not set: connecting directly with SUPABASE_DB_URL. Set it to the transaction pooler (`npx supabase secrets set AGENT_STATUS_DB_URL=...`, docs/api.md).',
  );
  return direct;
}

// The function instance's pool, replaced whenever a call gets no answer in time
// (shared/guarded-pool.ts says why a late query is never cancelled). Nothing here keeps session
// state, so a transaction-mode pooler may hand each transaction to another server connection: no
// prepared statements (prepare: false), no session SET (only SET LOCAL inside a transaction), no
// LISTEN, no session advisory locks.
const pool = new GuardedPool<postgres.Sql>(
  () =>
    postgres(databaseUrl(), {
      prepare: false,
      max: POOL,
      connect_timeout: 5,
      idle_timeout: 60,
      backoff: reconnectBackoff,
      // no arrays come back from the SQL API; see shared/guarded-pool.ts
      fetch_types: false,
      onnotice: () => {},
    }),
  {
    deadlineMs: DB_TIMEOUT_MS,
    onReplace: (what) => console.error(`the database did not answer the ${what} in time; opening new connections`),
  },
);

/**
 * Runs work on the function's database pool: its result, or a 503 (unavailable) when the database
 * is unreachable or gives no answer within the deadline (default AGENT_STATUS_DB_TIMEOUT_MS).
 */
export async function database<T>(what: string, work: (sql: postgres.Sql) => Promise<T>, deadlineMs?: number): Promise<T> {
  try {
    return await pool.run(what, work, deadlineMs);
  } catch (error) {
    if (error instanceof PoolDeadlineExceeded) throw timedOut(what);
    throw error;
  }
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
/**
 * One heartbeat's answer from its batch: the agent's new state (AgentState) as the JSON text the
 * database wrote, which goes into the HTTP answer as it is, or the error that refused it.
 */
type BatchAnswer = { agent: string; error: null } | { agent: null; error: { sqlstate: string; message: string; hint: string | null } };

const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock: run the batch again

/**
 * One batch, in one round trip, in a transaction whose statement may take only what is left of the
 * caller's deadline: the server gives up first, so a batch answered 503 is never committed afterwards
 * (with the timer alone, a batch waiting on a locked row committed once the row was free; the SQL
 * function itself also gives up a single lock wait after 2 s). One simple query of two statements,
 * SET LOCAL and the batch: PostgreSQL runs it as one implicit transaction and arms each statement's
 * timeout with the value set before it. A bind parameter would need the extended protocol, where the
 * SET would be a transaction of its own (BEGIN, SET, batch, COMMIT: three round trips, since
 * postgres.js waits for BEGIN and COMMIT; its reserve(), which could pipeline them, never resolves in
 * 3.4.9 while the pool has no open connection yet). So the batch's JSON travels as a dollar-quoted
 * literal, under a random tag that its text is checked not to contain. Each answer comes back as a
 * row of its own, the agent's state as text: parsing the batch's JSON answer here only for the
 * HTTP answer to serialize each part again cost Deno CPU and short-lived objects per heartbeat.
 */
async function heartbeatBatch(sql: postgres.Sql, items: HeartbeatItem[], deadline: number): Promise<BatchAnswer[]> {
  const json = JSON.stringify(items);
  let tag: string;
  do tag = `$hb${crypto.randomUUID().replaceAll('-', '')}$`;
  while (json.includes(tag));
  const budgetMs = Math.max(1, Math.floor(deadline - Date.now()));
  const [, answers] = (await sql.unsafe(
    `set local statement_timeout = ${budgetMs}; select (a.value -> 'agent')::text as agent, a.value -> 'error' as error
     from jsonb_array_elements(public.agent_heartbeat_batch(${tag}${json}${tag}::jsonb)) with ordinality a order by a.ordinality`,
  )) as unknown as [unknown, BatchAnswer[]];
  return answers;
}

const heartbeats = new Batcher<HeartbeatItem, BatchAnswer>(
  async (items) => {
    const deadline = Date.now() + DB_TIMEOUT_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        // the timer, a second after the server's own limit, covers a connection that stopped answering
        return await database('heartbeats', (sql) => heartbeatBatch(sql, items, deadline), deadline - Date.now() + 1000);
      } catch (error) {
        if (attempt >= 3 || !RETRYABLE.has((error as { code?: string }).code ?? '') || Date.now() >= deadline) throw error;
      }
    }
  },
  // 50: agent_heartbeat_batch's own limit. Beyond 2000 waiting, an answer would come after the
  // callers' timeouts anyway; refusing at once lets them back off instead. A batch takes a few
  // milliseconds; one out for 100 ms is waiting on something (a locked row, a slow server), and the
  // next one leaves on another connection beside it.
  { maxBatch: 50, maxInFlight: POOL, maxWaiting: 2000, slowAfterMs: 100 },
);

/**
 * Applies one heartbeat (batched with concurrent ones) and answers the agent's new state, an
 * AgentState as JSON text.
 */
export async function applyHeartbeat(token: string | null, heartbeat: HeartbeatRequest): Promise<string> {
  let answer: BatchAnswer;
  try {
    answer = await heartbeats.submit({ ...heartbeat, token });
  } catch (error) {
    if (error instanceof BatcherFull)
      throw new ApiError('unavailable', 'too many heartbeats are waiting for the database', { hint: UNAVAILABLE_HINT });
    // 57014: the statement_timeout of heartbeatBatch
    throw (error as { code?: string }).code === '57014' ? timedOut('heartbeats') : fromPostgres(error);
  }
  if (answer.error) throw fromSqlError(answer.error.sqlstate, answer.error.message, answer.error.hint);
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
    return await database(
      'reports',
      (sql) =>
        sql.begin(async (tx) => {
          const states: AgentState[] = [];
          for (const r of reports) {
            await tx.unsafe(`set local statement_timeout = ${Math.max(1, deadline - Date.now())}`);
            const [row] = await tx`
            select agent_private.agent_state_json(r) as agent
            from public.agent_report(${token}, ${r.agent_name}, ${r.event}, ${r.message ?? null}, ${r.health ?? null},
                                     ${r.last_activity ?? null}, ${r.pid ?? null}, ${r.exit_code ?? null},
                                     ${r.exit_signal ?? null}, ${r.details == null ? null : tx.json(r.details as postgres.JSONValue)},
                                     ${r.at ?? null}, ${r.heartbeat_interval_s ?? null}, ${r.report_id ?? null}) r`;
            states.push(row.agent as AgentState);
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

/** The figures of a Prometheus scrape, if the token is a metrics token (public.agent_metrics). */
export async function readMetrics(token: string | null): Promise<MetricsSnapshot> {
  try {
    const [row] = await database('metrics', (sql) => sql`select public.agent_metrics(${token}) as snapshot`);
    return row.snapshot as MetricsSnapshot;
  } catch (error) {
    throw fromPostgres(error);
  }
}

/** What one badge shows, if the key is a badge key (public.agent_badge). */
export async function readBadge(key: string | null, of: { agent: string } | { host: string }): Promise<BadgeFacts> {
  try {
    const [row] = await database(
      'badge',
      (sql) => sql`select public.agent_badge(${key}, ${'agent' in of ? of.agent : null}, ${'host' in of ? of.host : null}) as facts`,
    );
    return row.facts as BadgeFacts;
  } catch (error) {
    throw fromPostgres(error);
  }
}

/**
 * Enqueues commands as the caller, through PostgREST with the publishable (anon) key and the same SQL
 * functions the dashboard and the CLI call (shared/process-manager.ts enqueueCommands): a signed-in
 * user's JWT goes on as it came, so Postgres sees that user; an operator token goes to the SQL
 * functions as p_operator_token, which check it before anything else. PostgREST (rather than this
 * function's own database connection) because only it verifies a session JWT; no key here can act for
 * anyone but the caller. The same idempotency key from the same caller answers the first request's
 * commands instead of queuing new ones.
 */
export async function enqueueCommands(
  caller: { jwt: string } | { operatorToken: string },
  request: CommandRequest,
  idempotencyKey: string | null,
): Promise<Command[]> {
  // A session JWT goes with the publishable key (PostgREST then acts as that user), and so does an
  // operator token, which the SQL functions check.
  const rest = createClient(env('SUPABASE_URL'), publishableKey(), {
    auth: { persistSession: false, autoRefreshToken: false },
    global: { headers: 'jwt' in caller ? { Authorization: `Bearer ${caller.jwt}` } : {} },
  });
  const operatorToken = 'operatorToken' in caller ? caller.operatorToken : null;
  const rpc: OperatorRpc = async <T>(fn: string, args: Record<string, unknown>) =>
    restAnswer<T>(await rest.rpc(fn, { ...args, p_operator_token: operatorToken }).abortSignal(AbortSignal.timeout(DB_TIMEOUT_MS)));
  const queued = await enqueueShared(
    rpc,
    request.action,
    { agentName: request.agent_name, host: request.host },
    idempotencyKey ?? undefined,
  );
  // the API's Command: the fields it documents, not everything operator_commands reads
  const fields = Object.keys(Command.shape) as (keyof Command)[];
  return queued.map((command) => Object.fromEntries(fields.map((field) => [field, command[field]])) as Command);
}

// PostgREST's answer, or its error as the ApiError the caller should see.
function restAnswer<T>({ data, error }: { data: unknown; error: PostgrestError | null }): T {
  if (!error) return data as T;
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
