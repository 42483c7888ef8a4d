// The quiet runner (issue 22): the heartbeats its agents send through the agent channel reach the
// database in the runner's own heartbeat call, one per interval, not one PostgREST call each; a
// report still goes at once and after the agent's kept heartbeat; a process that ended is never
// made alive again by a heartbeat it sent before. Real runner, real agents, real PostgREST: the
// runner talks to the stack through a counting proxy (node:http), so the test sees every call.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { processEnvironment } from '../../runner/daemon/proc.ts';
import type { Runner } from '../../runner/daemon/runner.ts';
import { type CountingProxy, countingProxy } from '../helpers/counting-proxy.ts';
import { useTestStack } from '../helpers/stack.ts';
import { waitFor } from './helpers.ts';
import { agent, channelPost, enqueue, events, finished, fixtureAgent, makeHost } from './host.ts';

const stack = useTestStack();

// The runner's calls, through a proxy that also plays Realtime's part (joins answered, hints sent).
let proxy: CountingProxy;
let calls: string[] = [];

beforeAll(async () => {
  proxy = await countingProxy(stack.url, { realtime: true });
  calls = proxy.calls;
});

afterAll(() => proxy.stop());

const count = (fn: string, from = 0) => calls.slice(from).filter((call) => call === fn).length;

async function startHost(
  agents: Record<string, unknown>[],
  runner: Record<string, unknown> = {},
  supabase: Record<string, unknown> = {},
): Promise<{ runner: Runner; host: string; log: string[] }> {
  const host = await makeHost({ ...stack, url: proxy.url }, agents, { heartbeat_interval: '2s', ...runner }, undefined, supabase);
  const log: string[] = [];
  return { runner: await host.start((line) => log.push(line)), host: host.host, log };
}

it('many agents on one runner: every heartbeat applied, in one call per interval', async () => {
  const agents = Array.from({ length: 6 }, () => fixtureAgent('beats.sh', { autostart: true }));
  await startHost(agents);
  const { sql } = stack.db;
  // each agent heard from once at once (the channel knows no state of it yet); then kept
  await waitFor(
    'every agent to be heard',
    async () => {
      const rows = await sql`select count(*)::int as n from public.agent_status
                           where agent_name in ${sql(agents.map((a) => a.name))} and last_activity like 'beat %'`;
      return rows[0].n === agents.length;
    },
    20_000,
  );
  const from = calls.length;
  const startedAt = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 6000));
  const seconds = (Date.now() - startedAt) / 1000;
  // 6 agents beating every 0.2 s sent ~180 heartbeats meanwhile; one call each was ~180 calls
  expect(count('agent_heartbeat', from)).toBe(0);
  expect(count('runner_heartbeat', from)).toBeGreaterThanOrEqual(2);
  expect(count('runner_heartbeat', from)).toBeLessThanOrEqual(Math.ceil(seconds / 2) + 1);
  // and they were applied: each agent's activity is a late beat, not its first
  const rows = await sql`select agent_name, last_activity from public.agent_status where agent_name in ${sql(agents.map((a) => a.name))}`;
  for (const row of rows) expect(Number(/beat (\d+)/.exec(row.last_activity)?.[1])).toBeGreaterThan(5);
}, 90_000);

it("an agent's report goes at once, after its kept heartbeat; a dead agent's kept heartbeat is dropped", async () => {
  const spec = fixtureAgent('forever.sh', { restart: 'never' });
  await startHost([spec], { heartbeat_interval: '3s' });
  const { sql } = stack.db;
  expect(await finished(sql, await enqueue(sql, 'start', spec.name))).toMatchObject({ status: 'succeeded' });
  const pid = (await waitFor('the pid', async () => (await agent(sql, spec.name)).pid))!;
  const env = processEnvironment(pid)!;
  const token = env.get('AGENT_STATUS_TOKEN');
  const beat = (text: string) => channelPost(env, 'heartbeat', { agent_name: spec.name, last_activity: text }, token);
  const lastActivity = async () =>
    (await sql`select last_activity from public.agent_status where agent_name = ${spec.name}`)[0].last_activity;

  expect((await beat('first')).status).toBe(200); // sent at once: nothing known of it yet
  expect(await lastActivity()).toBe('first');
  // its first health goes at once, even the value the row holds: that was nobody's word, the
  // dashboard reads it "not reported" until it arrives
  const [{ health }] = await sql`select health from public.agent_status where agent_name = ${spec.name}`;
  const said = await channelPost(env, 'heartbeat', { agent_name: spec.name, status: 'running', health, last_activity: 'first' }, token);
  expect(said).toMatchObject({ status: 200, json: { agent: { health } } });
  expect(said.json.agent.health_reported_at).not.toBeNull();
  const from = calls.length;
  const kept = await beat('second');
  expect(kept).toMatchObject({ status: 200, json: { agent: { agent_name: spec.name, status: 'running' } } });
  expect(await lastActivity()).toBe('first'); // kept for the runner's next call
  // the SDK repeats status and health in its heartbeats: the same ones change nothing, so kept too
  const repeated = await channelPost(
    env,
    'heartbeat',
    { agent_name: spec.name, status: 'running', health, last_activity: 'second' },
    token,
  );
  expect(repeated.status).toBe(200);
  expect(count('agent_heartbeat', from)).toBe(0);
  expect(await lastActivity()).toBe('first');

  const report = await channelPost(env, 'report', { agent_name: spec.name, event: 'warning', message: 'disk nearly full' }, token);
  expect(report).toMatchObject({ status: 200, json: { agent: { status: 'warning', last_activity: 'second' } } });
  // in the runner's batch of reports, with whatever its other agents had queued
  expect(count('agent_report', from)).toBe(0);
  expect(count('runner_report_batch', from)).toBeGreaterThanOrEqual(1);
  expect(await lastActivity()).toBe('second');

  // A heartbeat kept when the process dies is not sent: the crash is the last word.
  await beat('third');
  await beat('fourth');
  process.kill(pid, 'SIGKILL');
  await waitFor('the crash to be recorded', async () => (await agent(sql, spec.name)).status === 'error', 15_000);
  const runnerCalls = count('runner_heartbeat');
  await waitFor('two more runner heartbeats', () => count('runner_heartbeat') >= runnerCalls + 2, 15_000);
  expect(await agent(sql, spec.name)).toMatchObject({ status: 'error' });
  expect(await lastActivity()).toBe('second');
  expect((await events(sql, spec.name)).filter((e) => e.kind === 'crashed')).toHaveLength(1);
}, 90_000);

it('with Realtime live it barely polls; a hint brings a command or a log request at once, and a lost hint waits one heartbeat', async () => {
  const spec = fixtureAgent('forever.sh');
  const { host, log } = await startHost([spec], { heartbeat_interval: '3s' }, { realtime: true });
  const { sql } = stack.db;
  await waitFor('the subscription', () => log.some((line) => /realtime: listening/.test(line)), 15_000);
  const from = calls.length;
  await new Promise((resolve) => setTimeout(resolve, 5000));
  // polling every 100 ms (this host's poll_interval) was ~50 claims and ~3 log polls in 5 s
  expect(count('runner_claim_commands', from)).toBeLessThanOrEqual(1);
  expect(count('runner_claim_log_requests', from)).toBeLessThanOrEqual(1);

  // a hint: claimed at once, well before the next heartbeat
  const id = await enqueue(sql, 'start', spec.name);
  const hinted = Date.now();
  proxy.hint(`agent_commands:${host}`, 'command');
  expect(await finished(sql, id)).toMatchObject({ status: 'succeeded' });
  expect(Date.now() - hinted).toBeLessThan(2500);

  const [{ id: logRequest }] = await sql`select public.request_agent_logs(${spec.name}, 5) as id`;
  proxy.hint(`agent_commands:${host}`, 'log_request');
  await waitFor(
    'the log request answered',
    async () => {
      const [row] = await sql`select answered_at from public.agent_log_requests where id = ${logRequest}`;
      return row.answered_at;
    },
    2500,
  );

  // no hint (lost): the heartbeat's answer says a command waits, and the runner claims it
  const unhinted = await enqueue(sql, 'stop', spec.name);
  expect(await finished(sql, unhinted, 10_000)).toMatchObject({ status: 'succeeded' });
}, 90_000);
