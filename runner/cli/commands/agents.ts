// Reading agents and their history through the operator read functions (supabase/schemas/65_reads.sql),
// shared by list, doctor, test and the control commands.
import type { AgentEventRow, AgentLiveRow } from '../../../shared/rows.ts';
import type { Api } from './connection.ts';
import { CliError, EXIT } from '../../exit-codes.ts';

export type LiveAgent = AgentLiveRow;

/** A history row as operator_agent_events returns it: with the agent's name. */
export interface AgentEvent extends AgentEventRow {
  agent_name: string | null;
}

/** Every agent, by name, however many (paged past PostgREST's row limit). */
export function listAgents(api: Api): Promise<LiveAgent[]> {
  return api.rpcAll<LiveAgent & Record<string, unknown>>('operator_list_agents', 'agent_name');
}

/** Case-insensitive edit distance, for "did you mean" suggestions. */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[y.length];
}

/** Up to three names closest to `name`: same letters in another case or spacing first. */
export function nearestNames(name: string, names: string[]): string[] {
  const squash = (s: string) => s.toLowerCase().replace(/[\s_-]+/g, '');
  const scored = names.map((candidate) => ({
    candidate,
    score: squash(candidate) === squash(name) ? 0 : distance(name, candidate) / Math.max(name.length, candidate.length),
  }));
  // The same letters in another case or spacing is almost certainly the one meant: name only those.
  const best = scored.some(({ score }) => score === 0) ? 0 : 0.5;
  return scored
    .filter(({ score }) => score <= best)
    .sort((a, b) => a.score - b.score)
    .slice(0, 3)
    .map(({ candidate }) => candidate);
}

/**
 * The agent named exactly `name` as it reads now, or undefined: the database reads that one agent
 * (past the API's row cap, where doctor, timeouts, set and test once said "no agent named", and
 * without the live view of the whole fleet that a filter after the list cost).
 */
export async function agentByName(api: Api, name: string): Promise<LiveAgent | undefined> {
  const [agent] = await api.rpc<LiveAgent[]>('operator_list_agents', { p_name: name });
  return agent;
}

/** The agent named exactly `name`, or a not-found error that suggests the nearest names. */
export async function findAgent(api: Api, name: string): Promise<LiveAgent> {
  const agent = await agentByName(api, name);
  if (agent) return agent;
  throw unknownAgent(
    name,
    (await listAgents(api)).map((a) => a.agent_name),
  );
}

/** The agent with this id as it reads now, or undefined once it is gone (archived). */
export async function agentById(api: Api, id: number): Promise<LiveAgent | undefined> {
  const [agent] = await api.rpc<LiveAgent[]>('operator_list_agents', { p_id: id });
  return agent;
}

export function unknownAgent(name: string, names: string[]): CliError {
  const near = nearestNames(name, names);
  return new CliError(
    `no agent named ${JSON.stringify(name)}`,
    EXIT.notFound,
    near.length
      ? `Names must match exactly. Did you mean ${near.map((n) => JSON.stringify(n)).join(' or ')}?`
      : names.length
        ? 'List agents with: agent-status list'
        : 'There are no agents yet: a runner registers its agents, or create an agent token ' +
          '(agent-status token create agent --name <name>).',
  );
}
