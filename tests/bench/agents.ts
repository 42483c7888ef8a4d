// Agents for the benchmarks, each with an agent token whose text is known (asa_<prefix>_<i>), so
// pgbench scripts and load generators can send it; made straight in the database.
import type { Sql } from 'postgres';

export interface BenchAgent {
  name: string;
  token: string;
}

/** Creates count agents named <prefix>-agent-<i>, each with its token asa_<prefix>_<i>. */
export async function createBenchAgents(sql: Sql, prefix: string, count: number): Promise<BenchAgent[]> {
  const agents = Array.from({ length: count }, (_, i) => ({ name: `${prefix}-agent-${i}`, token: `asa_${prefix}_${i}` }));
  for (const { name, token } of agents) {
    await sql`insert into public.agent_status (agent_name) values (${name})`;
    await sql`
      insert into public.api_tokens (kind, label, token_hash, token_prefix, agent_id)
      select 'agent', ${name}, sha256(convert_to(${token}, 'UTF8')), left(${token}, 10), id
      from public.agent_status where agent_name = ${name}`;
  }
  return agents;
}
