// Past the API's row cap (PostgREST max_rows, 1,000 on Supabase): the commands that act on one agent
// find it by name. They said "no agent named" for every agent after the first 1,000.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { cli, stackEnv } from './helpers.ts';

const stack = useTestStack();
// sorted last by name: operator_list_agents orders by name, so the cap cuts it off
const LAST = 'zz-bulk-1100';

beforeAll(async () => {
  await stack.db.sql`
    insert into public.agent_status (agent_name, status)
    select format('zz-bulk-%s', lpad(n::text, 4, '0')), 'stopped' from generate_series(1, 1100) n`;
});

describe('commands on one agent among 1,100', () => {
  it('timeouts, set and doctor find the last one by name', async () => {
    const timeouts = await cli(['timeouts', LAST, '--heartbeat', '45s', '--json'], stackEnv(stack));
    expect(timeouts.exitCode, timeouts.stderr).toBe(0);
    expect(JSON.parse(timeouts.stdout)).toMatchObject({ agent_name: LAST, heartbeat_timeout_s: 45 });

    const set = await cli(['set', LAST, 'warning', '40', '--json'], stackEnv(stack));
    expect(set.exitCode, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ agent_name: LAST, status: 'warning', health: 40 });

    const doctor = await cli(['doctor', LAST, '--json'], stackEnv(stack));
    expect(doctor.stdout).not.toMatch(/no agent is named/);
    expect(doctor.stdout).toContain(LAST);
  });

  it('an unknown name is still refused with the nearest names', async () => {
    const unknown = await cli(['timeouts', 'zz-bulk-01', '--heartbeat', '45s'], stackEnv(stack));
    expect(unknown.exitCode).not.toBe(0);
    expect(unknown.stderr).toContain('no agent named "zz-bulk-01"');
  });
});
