// The runner as its own process, killed and started again: what it started keeps running and is
// adopted, never started twice; an agent killed while adopted is seen dead and restarted per policy;
// SIGTERM leaves the agents running and reports the runner offline.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { processEnvironment, processInfo } from '../../runner/daemon/proc.ts';
import { RUNNER_MARK } from '../../runner/daemon/supervisor.ts';
import { useTestStack } from '../helpers/stack.ts';
import { alive, FIXTURES, waitFor } from './helpers.ts';
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

it('an agent an older runner started (a loopback URL, no socket) is adopted, and its row, its history and the log say it cannot report until restarted', async () => {
  const forever = fixtureAgent('forever.sh');
  const host = await makeHost(stack, [forever]);
  const { sql } = stack.db;
  const { process: first } = await host.spawn();
  await finished(sql, await enqueue(sql, 'start', forever.name));
  const { pid } = await agent(sql, forever.name);
  const mark = processEnvironment(pid!)!.get(RUNNER_MARK)!;
  first.kill('SIGTERM');
  await first;
  // in its place, the same agent as a runner before the socket channel started it
  process.kill(-pid!, 'SIGKILL');
  const legacy = execa(join(FIXTURES, 'forever.sh'), [], {
    detached: true,
    reject: false,
    env: {
      AGENT_NAME: forever.name,
      [RUNNER_MARK]: mark,
      AGENT_STATUS_URL: 'http://127.0.0.1:41999',
      AGENT_STATUS_TOKEN: 'asl_from_the_older_runner',
    },
  });
  const stateFile = join(host.stateDir, 'state.json');
  const state = JSON.parse(readFileSync(stateFile, 'utf8'));
  state.agents[forever.name].process = { pid: legacy.pid, startTicks: processInfo(legacy.pid!)!.startTicks };
  writeFileSync(stateFile, JSON.stringify(state));

  const log: string[] = [];
  await host.start((line) => log.push(line));
  const said = `started by an older runner, it reports to http://127.0.0.1:41999, which nothing serves now: its own reports are lost until it is restarted (agent-status restart "${forever.name}")`;
  const row = await waitFor(
    'the agent marked as unable to report',
    async () => {
      const current = await agent(sql, forever.name);
      return current.status === 'warning' ? current : undefined;
    },
    10_000,
  );
  expect(row).toMatchObject({ pid: legacy.pid, status_reason: said });
  expect((await events(sql, forever.name)).slice(-2).map((e) => [e.kind, e.to_status])).toEqual([
    ['adopted', 'running'],
    ['warning', 'warning'],
  ]);
  expect(log).toContain(`${forever.name} (pid ${legacy.pid}): ${said}`);

  // what it says to do works: restarted, it gets the socket and reads running
  expect((await finished(sql, await enqueue(sql, 'restart', forever.name))).status).toBe('succeeded');
  const restarted = await agent(sql, forever.name);
  expect(restarted.status).toBe('running');
  expect(processEnvironment(restarted.pid!)!.get('AGENT_STATUS_SOCKET')).toBeDefined();
  await legacy;
});
