// An agent using the SDK under the runner needs no configuration: the runner gives it the URL of its
// agent channel, a secret that may speak for this agent only, and its name. No edge function runs in
// this stack: a supervised agent's reports cost no invocations.
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { FIXTURES, waitFor } from './helpers.ts';
import { enqueue, finished, fixtureAgent, makeHost } from './host.ts';

const stack = useTestStack();

it('a Python agent reports through its runner with the environment the runner gave it', async () => {
  const agent = fixtureAgent('sdk-agent.py', {
    command: 'python3',
    args: ['-u', join(FIXTURES, 'sdk-agent.py')],
    env: { PYTHONPATH: resolve(import.meta.dirname, '../../shared/python') },
  });
  const host = await makeHost(stack, [agent]);
  await host.start();
  const { sql } = stack.db;
  expect(await finished(sql, await enqueue(sql, 'start', agent.name))).toMatchObject({ status: 'succeeded' });
  const row = await waitFor(
    "the agent's own report",
    async () => {
      const [found] = await sql`select status, health, last_activity from public.agent_status where agent_name = ${agent.name}`;
      return found.last_activity ? found : undefined;
    },
    20_000,
  );
  expect(row).toMatchObject({ status: 'running', health: 90, last_activity: 'working, configured by the runner' });
}, 60_000);
