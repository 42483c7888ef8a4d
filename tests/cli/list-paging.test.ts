// `agent-status list` past PostgREST's row limit (max-rows 1,000, as on Supabase): every agent, in
// name order, none silently cut.
import { describe, it, expect } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { cli, stackEnv } from './helpers.ts';

const stack = useTestStack();

describe('list', () => {
  it('prints every one of 2,345 agents, read in pages', async () => {
    await stack.db.sql`
      insert into public.agent_status (agent_name, status) select format('fleet-%s', lpad(i::text, 5, '0')), 'stopped'
      from generate_series(1, 2345) i`;
    const listed = await cli(['list', '--json'], stackEnv(stack));
    expect(listed.exitCode, listed.stderr).toBe(0);
    const names = (JSON.parse(listed.stdout) as { agent_name: string }[]).map((agent) => agent.agent_name);
    expect(names).toHaveLength(2345);
    expect(names).toEqual(Array.from({ length: 2345 }, (_, i) => `fleet-${String(i + 1).padStart(5, '0')}`));
  });
});
