// Setting up agents, tokens and runners directly in a test database (as the superuser), so tests can
// start from any state and then act through the public SQL API.
import type { Sql } from 'postgres';
import type { AgentStatus, EventSource } from '../../shared/status.ts';

export async function createToken(
  sql: Sql,
  kind: 'agent' | 'runner' | 'operator',
  scope: { agent?: string; host?: string; email?: string; newAgents?: boolean },
): Promise<string> {
  const [row] = await sql`
    select token from public.create_api_token(${kind}, null, ${scope.agent ?? null}, ${scope.host ?? null}, ${scope.email ?? null},
      p_new_agents => ${scope.newAgents ?? false})`;
  return row.token as string;
}

/** Puts an agent (created if missing) into a status as if it got there by itself. */
export async function setAgentState(
  sql: Sql,
  name: string,
  status: AgentStatus,
  source: EventSource = status === 'stale' ? 'sweep' : 'agent',
) {
  const live = status === 'running' || status === 'warning';
  await sql`
    insert into public.agent_status (agent_name) values (${name}) on conflict (agent_name) do nothing`;
  await sql`
    update public.agent_status set status = ${status}, status_source = ${source},
      health = 50, last_heartbeat = now() - interval '10 seconds',
      started_at = case when ${status} <> 'stopped' then now() - interval '1 hour' end,
      stale_at = case when ${live} then now() + interval '1 hour' end,
      inactive_at = case when ${status} = 'running' then now() + interval '1 hour' end
    where agent_name = ${name}`;
}

export async function agentRow(sql: Sql, name: string) {
  const [row] = await sql`select * from public.agent_status where agent_name = ${name}`;
  return row;
}

export async function liveRow(sql: Sql, name: string) {
  const [row] = await sql`select * from public.agent_status_live where agent_name = ${name}`;
  return row;
}

export async function eventsOf(sql: Sql, name: string) {
  return sql`
    select e.* from public.agent_events e join public.agent_status a on a.id = e.agent_id
    where a.agent_name = ${name} order by e.id`;
}

/**
 * Registers a runner for `host` managing `agents`, with a token that may register any name ('*'):
 * tests put agents that report with their own tokens under runners. Returns its token.
 */
export async function registerRunner(sql: Sql, host: string, agents: string[]): Promise<string> {
  const [{ token }] = await sql`
    select token from public.create_api_token('runner', p_host => ${host}, p_agents => ${['*']})`;
  await sql`select public.runner_register(${token}, ${sql.json(agents.map((name) => ({ name })))})`;
  return token;
}

/** The SQLSTATE and message a statement fails with, or undefined when it succeeds. */
export async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string } | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    const e = error as { code?: string; message: string };
    return { code: e.code ?? '?', message: e.message };
  }
}
