// public.agent_heartbeat_batch, which the heartbeat function sends concurrent heartbeats through: the
// same answers as agent_heartbeat one by one, and a refused heartbeat fails alone, writing nothing.
import { describe, it, expect, beforeAll } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { createToken } from '../helpers/agents.ts';

const db = useTestDatabase();
const tokens: Record<string, string> = {};

beforeAll(async () => {
  for (const agent of ['b-1', 'b-2', 'b-3']) tokens[agent] = await createToken(db.sql, 'agent', { agent });
});

async function batch(items: unknown[]) {
  const [{ answers }] = await db.sql`select public.agent_heartbeat_batch(${db.sql.json(items as never)}) as answers`;
  return answers as ({ agent: Record<string, unknown> } | { error: { sqlstate: string; message: string; hint: string | null } })[];
}

describe('agent_heartbeat_batch', () => {
  it('applies every heartbeat and answers in the order they were sent', async () => {
    const answers = await batch([
      { token: tokens['b-3'], agent_name: 'b-3', health: 30 },
      { token: tokens['b-1'], agent_name: 'b-1', status: 'warning', health: 10, last_activity: 'slow' },
      { token: tokens['b-2'], agent_name: 'b-2' },
    ]);
    expect(answers.map((a) => 'agent' in a && a.agent.agent_name)).toEqual(['b-3', 'b-1', 'b-2']);
    expect(answers[1]).toMatchObject({ agent: { status: 'warning', health: 10, last_activity: 'slow' } });
    const rows = await db.sql`select agent_name, status, health from public.agent_status where agent_name like 'b-%' order by agent_name`;
    expect(rows).toEqual([
      { agent_name: 'b-1', status: 'warning', health: 10 },
      { agent_name: 'b-2', status: 'running', health: 0 },
      { agent_name: 'b-3', status: 'running', health: 30 },
    ]);
  });

  it('answers a refused heartbeat with its own error and still applies the others', async () => {
    await db.sql`select public.force_agent_status('b-2', 'stopped')`;
    const [before] = await db.sql`select count(*)::int as events from public.agent_events`;
    const answers = await batch([
      { token: tokens['b-1'], agent_name: 'b-2' },
      { token: tokens['b-3'], agent_name: 'b-3', health: 77 },
      { token: tokens['b-3'], agent_name: 'b-3', health: 101 },
      'not an object',
    ]);
    expect(answers[0]).toMatchObject({
      error: { sqlstate: '28000', message: expect.stringMatching(/not allowed to speak for agent 'b-2'/) },
    });
    expect(answers[1]).toMatchObject({ agent: { agent_name: 'b-3', health: 77 } });
    expect(answers[2]).toMatchObject({ error: { sqlstate: '22023', message: 'health must be between 0 and 100, got 101' } });
    expect(answers[3]).toMatchObject({ error: { sqlstate: '22023' } });
    const [b2] = await db.sql`select status from public.agent_status where agent_name = 'b-2'`;
    expect(b2.status).toBe('stopped');
    // only b-3's health change was recorded
    const [after] = await db.sql`select count(*)::int as events from public.agent_events`;
    expect(after.events - before.events).toBe(1);
  });

  it('refuses more than 50 heartbeats, and anything but an array', async () => {
    await expect(batch(Array.from({ length: 51 }, () => ({})))).rejects.toMatchObject({
      code: '22023',
      message: 'at most 50 heartbeats per batch, got 51',
    });
    await expect(db.sql`select public.agent_heartbeat_batch('{}'::jsonb)`).rejects.toMatchObject({ code: '22023' });
  });

  it("is for the functions' own connection only", async () => {
    const [grants] = await db.sql`
      select has_function_privilege('anon', 'public.agent_heartbeat_batch(jsonb)', 'execute') as anon,
             has_function_privilege('authenticated', 'public.agent_heartbeat_batch(jsonb)', 'execute') as authenticated,
             has_function_privilege('service_role', 'public.agent_heartbeat_batch(jsonb)', 'execute') as service_role`;
    expect(grants).toEqual({ anon: false, authenticated: false, service_role: true });
  });
});
