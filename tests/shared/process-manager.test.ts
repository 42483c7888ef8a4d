// The seed's process-manager API (shared/process-manager.ts) from Node, through supabase-js signed in
// as an operator, against a real stack and a real runner supervising real processes.
import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createProcessManager, enqueueCommands, type OperatorRpc, ProcessManagerError } from '../../shared/process-manager.ts';
import { registerRunner } from '../helpers/agents.ts';
import { useTestStack } from '../helpers/stack.ts';
import { agentProcesses, fixtureAgent, makeHost } from '../runner/host.ts';

const stack = useTestStack();
let operator: SupabaseClient;

beforeAll(async () => {
  operator = createClient(stack.url, stack.anonKey, {
    realtime: { transport: WebSocket as never },
    auth: { persistSession: false, autoRefreshToken: false },
  });
  const { error } = await operator.auth.signInWithPassword(stack.operator);
  expect(error).toBeNull();
});

async function rejection(promise: Promise<unknown>): Promise<ProcessManagerError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the promise to reject');
    },
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(ProcessManagerError);
  return error as ProcessManagerError;
}

describe('createProcessManager', () => {
  // first: start all reaches every managed agent, and those of the later tests' stopped runners would wait
  it('restarts an agent into a new process and starts all agents of every runner', async () => {
    const one = fixtureAgent('forever.sh');
    const two = fixtureAgent('forever.sh');
    await (await makeHost(stack, [one, two])).start();
    const { startAllAgents, restartAgent } = createProcessManager(operator);

    const all = await startAllAgents();
    const [row1, row2] = await stack.db.sql`select id from public.agent_status where agent_name in (${one.name}, ${two.name}) order by id`;
    expect(all.filter((o) => [row1.id, row2.id].includes(o.agentId)).map((o) => o.status)).toEqual(['succeeded', 'succeeded']);
    const [before] = agentProcesses(one.name);
    expect(agentProcesses(two.name)).toHaveLength(1);

    await restartAgent(one.name);
    const [after] = agentProcesses(one.name);
    expect(after).toBeGreaterThan(0);
    expect(after).not.toBe(before);
  });

  it('starts and stops an agent, resolving with the runner’s answer', async () => {
    const agent = fixtureAgent('forever.sh');
    await (await makeHost(stack, [agent])).start();
    const queued: number[] = [];
    const { startAgent, stopAgent } = createProcessManager(operator, { onQueued: (commands) => queued.push(commands[0].commandId) });

    const started = await startAgent(agent.name);
    expect(started).toMatchObject({ action: 'start', status: 'succeeded' });
    expect(started.result).toMatch(/started/);
    expect(queued).toEqual([started.commandId]);
    const [pid] = agentProcesses(agent.name);
    expect(pid).toBeGreaterThan(0);

    const stopped = await stopAgent(agent.name);
    expect(stopped).toMatchObject({ action: 'stop', status: 'succeeded' });
    expect(agentProcesses(agent.name)).toEqual([]);
  });

  it('rejects a start the database refuses, and one the runner fails, each with its reason', async () => {
    const { startAgent } = createProcessManager(operator);
    await stack.db.sql`select public.create_api_token('agent', p_agent_name => 'Unmanaged Agent')`;
    const refused = await rejection(startAgent('Unmanaged Agent'));
    expect(refused.reason).toBe('refused');
    expect(refused.message).toMatch(/no runner manages agent 'Unmanaged Agent'/);

    const missing = fixtureAgent('forever.sh', { command: '/nonexistent/agent-binary' });
    await (await makeHost(stack, [missing])).start();
    const failed = await rejection(startAgent(missing.name));
    expect(failed.reason).toBe('failed');
    expect(failed.outcome?.status).toBe('failed');
    expect(failed.message).toMatch(/could not start/);
  });

  it('rejects with a timeout when no runner answers, naming the command that waits', async () => {
    const agent = fixtureAgent('forever.sh');
    const runner = await (await makeHost(stack, [agent])).start();
    await runner.shutdown();
    const { stopAgent } = createProcessManager(operator, { timeoutMs: 1500 });
    const timedOut = await rejection(stopAgent(agent.name));
    expect(timedOut.reason).toBe('timeout');
    expect(timedOut.outcome?.status).toBe('pending');
    expect(timedOut.message).toMatch(/no answer from its runner within 1.5 s \(command \d+ is pending/);
  });

  it('forces an agent to stopped in the database only, recorded with who did it', async () => {
    const agent = fixtureAgent('forever.sh', { autostart: true });
    await (await makeHost(stack, [agent])).start();
    const { forceStopAgent } = createProcessManager(operator);
    await forceStopAgent(agent.name, 'cleared by hand');
    const [row] = await stack.db.sql`select status, status_reason from public.agent_status where agent_name = ${agent.name}`;
    expect(row).toEqual({ status: 'stopped', status_reason: 'cleared by hand' });
    const [event] = await stack.db.sql`select e.actor from public.agent_events e join public.agent_status a on a.id = e.agent_id
                                        where a.agent_name = ${agent.name} and e.kind = 'force'`;
    expect(event.actor).toBe(`operator ${stack.operator.email}`);
    expect(agentProcesses(agent.name)).toHaveLength(1);
  });
});

describe('enqueueCommands', () => {
  it('sends a command whose answer was lost again with its idempotency key: queued once, answered with it', async () => {
    await registerRunner(stack.db.sql, 'lost-host', ['lost-answer']);
    let lost = 0;
    const rpc: OperatorRpc = async <T>(fn: string, args: Record<string, unknown>) => {
      const { data, error } = await operator.rpc(fn, args);
      if (error) throw new Error(error.message);
      // applied by the database, but the answer never arrives: twice, as through a frozen proxy
      if (fn === 'enqueue_agent_commands' && lost++ < 2) throw Object.assign(new Error('no answer'), { retryable: true });
      return data as T;
    };
    const queued = await enqueueCommands(rpc, 'restart', { agentName: 'lost-answer' });
    expect(lost).toBe(3);
    const rows = await stack.db.sql`
      select c.id, c.idempotency_key from public.agent_commands c join public.agent_status a on a.id = c.agent_id
      where a.agent_name = 'lost-answer'`;
    expect(rows).toHaveLength(1);
    expect(rows[0].idempotency_key).toMatch(/^[0-9a-f]{32}$/);
    expect(queued.map((command) => command.id)).toEqual([Number(rows[0].id)]);
  });

  it('does not retry a refusal', async () => {
    let calls = 0;
    const rpc: OperatorRpc = async <T>(fn: string, args: Record<string, unknown>) => {
      calls++;
      const { data, error } = await operator.rpc(fn, args);
      if (error) throw new Error(error.message);
      return data as T;
    };
    await expect(enqueueCommands(rpc, 'restart', { agentName: 'no-such-agent' })).rejects.toThrow(/no agent named/);
    expect(calls).toBe(1);
  });
});
