// The runner as its own process, killed and started again: what it started keeps running and is
// adopted, never started twice; an agent killed while adopted is seen dead and restarted per policy;
// SIGTERM leaves the agents running and reports the runner offline.
import { expect, it } from 'vitest';
import { processEnvironment } from '../../runner/daemon/proc.ts';
import { useTestStack } from '../helpers/stack.ts';
import { alive, waitFor } from './helpers.ts';
import { agent, agentProcesses, channelPost, enqueue, events, finished, fixtureAgent, makeHost } from './host.ts';

const stack = useTestStack();

it('a runner SIGKILLed while its agents run is started again: every agent adopted, none started twice', async () => {
  const always = fixtureAgent('forever.sh', { restart: 'always' });
  const never = fixtureAgent('forever.sh', { restart: 'never' });
  const host = await makeHost(stack, [always, never]);
  const { sql } = stack.db;

  const { process: first } = await host.spawn();
  await Promise.all([finished(sql, await enqueue(sql, 'start', always.name)), finished(sql, await enqueue(sql, 'start', never.name))]);
  const pids = { always: (await agent(sql, always.name)).pid!, never: (await agent(sql, never.name)).pid! };

  first.kill('SIGKILL');
  await first;
  expect(alive(pids.always) && alive(pids.never)).toBe(true);
  // a start sent while no runner runs waits in the queue for the next one
  const pending = await enqueue(sql, 'start', always.name);

  await host.spawn();
  expect(await finished(sql, pending)).toEqual({ status: 'succeeded', result: `already running (pid ${pids.always})` });
  for (const [name, pid] of [
    [always.name, pids.always],
    [never.name, pids.never],
  ] as const) {
    expect(agentProcesses(name)).toEqual([pid]);
    expect(await agent(sql, name)).toMatchObject({ status: 'running', pid });
    const kinds = (await events(sql, name)).map((e) => e.kind).filter((k) => k === 'started' || k === 'adopted');
    expect(kinds).toEqual(['started', 'adopted']);
    // it still reports through the new runner with what the old one gave it (same socket, same secret)
    const env = processEnvironment(pid)!;
    const heartbeat = await channelPost(env, 'heartbeat', { agent_name: name, health: 77 }, env.get('AGENT_STATUS_TOKEN'));
    expect(heartbeat.status).toBe(200);
  }

  // killed behind the back of the runner that adopted them (not their parent: no exit status comes)
  process.kill(pids.always, 'SIGKILL');
  process.kill(pids.never, 'SIGKILL');
  const began = Date.now();
  const restarted = await waitFor(
    'the adopted agent to be restarted',
    async () => {
      const row = await agent(sql, always.name);
      // warning, not running: it crashed, and reads running again once it stayed up backoff.reset_after
      return row.status === 'warning' && row.pid && row.pid !== pids.always ? row : undefined;
    },
    5000,
  );
  const dead = await waitFor(
    'the other one to be recorded dead',
    async () => {
      const row = await agent(sql, never.name);
      return row.status === 'error' ? row : undefined;
    },
    5000,
  );
  expect(Date.now() - began).toBeLessThan(3000);
  expect(dead.status_reason).toMatch(/exit code is unknown/);
  expect(agentProcesses(always.name)).toEqual([restarted.pid]);
  expect(agentProcesses(never.name)).toEqual([]);
});

it('SIGTERM: the runner finishes, leaves its agents running and reports itself stopped (planned: not offline)', async () => {
  const forever = fixtureAgent('forever.sh');
  const host = await makeHost(stack, [forever]);
  const { sql } = stack.db;
  const { process: runner } = await host.spawn();
  await finished(sql, await enqueue(sql, 'start', forever.name));
  const { pid } = await agent(sql, forever.name);
  runner.kill('SIGTERM');
  const result = await runner;
  expect(result.exitCode).toBe(0);
  expect(result.all).toMatch(/agents left running/);
  expect(alive(pid!)).toBe(true);
  const [row] = await sql`select status from public.runners where host = ${host.host}`;
  expect(row.status).toBe('stopped');
});
