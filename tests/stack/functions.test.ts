// Edge functions served by the real Deno behind /functions/v1, with the environment a deployed function
// gets, through the same gateway as everything else.
import { describe, it, expect } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';

const stack = useTestStack({ functions: true });

describe('edge functions in the local stack', () => {
  it('serves the heartbeat function, which reaches the database with SUPABASE_DB_URL', async () => {
    const [{ token }] = await stack.db.sql`select token from public.create_api_token('agent', null, 'fn-agent')`;
    const response = await fetch(`${stack.url}/functions/v1/heartbeat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agent_name: 'fn-agent', status: 'running', health: 90 }),
    });
    expect(response.status).toBe(200);
    const [row] = await stack.db.sql`select status, health from public.agent_status where agent_name = 'fn-agent'`;
    expect(row).toEqual({ status: 'running', health: 90 });
  });

  it('says which function is missing and how to add it', async () => {
    const response = await fetch(`${stack.url}/functions/v1/no-such-function`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect((await response.json()).message).toMatch(/supabase\/functions\/no-such-function\/index\.ts/);
  });

  it('does not serve shared folders as functions', async () => {
    const response = await fetch(`${stack.url}/functions/v1/_shared`, { method: 'POST' });
    expect(response.status).toBe(404);
  });
});
