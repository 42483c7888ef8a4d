// Issue 19, case 7, with a real runner: a runner stopped on purpose (SIGTERM, its agents stopped by
// command first) pages no one; a runner that goes silent (SIGKILL) is still a "host silent" incident;
// a host that comes back says what is true of each of its agents. The outbox is the observable.
import { expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { waitFor } from '../runner/helpers.ts';
import { enqueue, finished, fixtureAgent, makeHost } from '../runner/host.ts';

const stack = useTestStack();

async function channel(name: string) {
  await stack.db.sql`select public.alert_channel_save(${name}, 'webhook', ${`http://127.0.0.1:9/${name}`}, 'whsec_0123456789abcdef')`;
  await stack.db.sql`select public.alert_channel_rules(${name}, ${stack.db.sql.json({ flap_threshold: 0 })})`;
}

/** The host notices about this host on one channel (its agents' own notices are not the question here). */
async function deliveries(host: string, channelName: string) {
  return stack.db.sql`select d.kind, d.notice from public.alert_deliveries d join public.alert_channels c on c.id = d.channel_id
                      where d.notice ->> 'host' = ${host} and d.kind like 'host%' and c.name = ${channelName} order by d.id`;
}

it('SIGTERM of a runner whose agents were stopped on purpose pages no one; SIGKILL of it is a host incident', async () => {
  await channel('pager');
  const agents = [fixtureAgent('forever.sh'), fixtureAgent('forever.sh')];
  const host = await makeHost(stack, agents, { heartbeat_interval: '1s' });
  const { sql } = stack.db;
  const { process: first } = await host.spawn();
  for (const agent of agents) expect(await finished(sql, await enqueue(sql, 'start', agent.name))).toMatchObject({ status: 'succeeded' });
  for (const agent of agents) expect(await finished(sql, await enqueue(sql, 'stop', agent.name))).toMatchObject({ status: 'succeeded' });

  first.kill('SIGTERM');
  await first;
  // said goodbye: stopped, not offline or silent (issue 19), through the sweep too
  const [runner] = await sql`select status from public.runner_status_live where host = ${host.host}`;
  expect(runner.status).toBe('stopped');
  // past its silence deadline and through the sweep: said goodbye, so no incident
  await sql`select pg_sleep(2.5)`;
  await sql`select public.agent_status_sweep()`;
  expect(await deliveries(host.host, 'pager')).toEqual([]);
  expect((await sql`select status from public.runner_status_live where host = ${host.host}`)[0].status).toBe('stopped');

  // the same host, its runner killed: silence is an incident
  const { process: second } = await host.spawn();
  second.kill('SIGKILL');
  await second;
  await waitFor(
    'the runner to read silent',
    async () => (await sql`select status from public.runner_status_live where host = ${host.host}`)[0].status === 'silent',
    20_000,
  );
  await sql`select public.agent_status_sweep()`;
  expect((await deliveries(host.host, 'pager')).map((d) => d.kind)).toEqual(['host_down']);
}, 90_000);

it('a host back says what is true of each agent: one running, one crash-looping', async () => {
  await channel('hosts');
  const { sql } = stack.db;
  const [{ token }] = await sql`select token from public.create_api_token('runner', null, null, 'rack-9', null, p_new_agents => true)`;
  await sql`select public.runner_register(${token}, ${sql.json([{ name: 'rack9-ok' }, { name: 'rack9-loop' }])})`;
  await sql`select public.runner_heartbeat(${token}, null, 1)`;
  for (const name of ['rack9-ok', 'rack9-loop']) await sql`select public.agent_report(${token}, ${name}, 'started')`;
  for (let crash = 0; crash < 3; crash++) {
    await sql`select public.agent_report(${token}, 'rack9-loop', 'crashed', p_exit_code => 1,
                p_details => ${sql.json({ restart_in_s: 1 })})`;
    await sql`select public.agent_report(${token}, 'rack9-loop', 'started')`;
  }
  await sql`update public.runners set last_seen_at = now() - interval '1 minute' where host = 'rack-9'`;
  await sql`select public.agent_status_sweep()`;
  await sql`select public.runner_heartbeat(${token}, ${sql.json([{ name: 'rack9-ok' }, { name: 'rack9-loop' }])}, 1)`;
  const rows = await deliveries('rack-9', 'hosts');
  expect(rows.map((d) => d.kind)).toEqual(['host_down', 'host_up']);
  // what is true of each: counted in the title, named in the text, the worst first
  expect(rows[1].notice).toMatchObject({ title: 'host rack-9 is back: 2 agents (1 crash-looping, 1 running)', severity: 'warning' });
  expect(rows[1].notice.text).toMatch(/; rack9-loop crash-looping, rack9-ok running$/);
}, 60_000);

it('agents a stopped runner left running that go stale are told once, under the host, as a stop and not a silence', async () => {
  await channel('left');
  const { sql } = stack.db;
  const [{ token }] = await sql`select token from public.create_api_token('runner', null, null, 'rack-7', null, p_new_agents => true)`;
  await sql`select public.runner_register(${token}, ${sql.json([{ name: 'rack7-a' }, { name: 'rack7-b' }])})`;
  await sql`select public.runner_heartbeat(${token}, null, 1)`;
  for (const name of ['rack7-a', 'rack7-b']) await sql`select public.agent_report(${token}, ${name}, 'started')`;
  await sql`select public.runner_offline(${token})`;
  // the goodbye itself: stopped, through the sweep, and nothing told
  await sql`update public.runners set last_seen_at = now() - interval '1 minute' where host = 'rack-7'`;
  await sql`select public.agent_status_sweep()`;
  expect((await sql`select status from public.runner_status_live where host = 'rack-7'`)[0].status).toBe('stopped');
  expect(await deliveries('rack-7', 'left')).toEqual([]);
  // what it left running goes unheard: one host notice that says the runner was stopped
  await sql`update public.agent_status set stale_at = now() - interval '1 second' where agent_name like 'rack7-%'`;
  await sql`select public.agent_status_sweep()`;
  const rows = await deliveries('rack-7', 'left');
  expect(rows.map((d) => d.kind)).toEqual(['host_down']);
  expect(rows[0].notice).toMatchObject({ title: 'host rack-7 is stopped, its agents unwatched: 2 agents', status: 'stopped' });
  expect(rows[0].notice.text).toMatch(
    /^the runner on rack-7 was stopped \d+ s ago and left its agents running; nothing relays their heartbeats$/,
  );
  const [agentNote] = await sql`select status, status_reason from public.agent_status_live where agent_name = 'rack7-a'`;
  expect(agentNote.status).toBe('stale');
  // a runner starting there again closes it, saying what each agent reads
  await sql`select public.runner_register(${token}, ${sql.json([{ name: 'rack7-a' }, { name: 'rack7-b' }])})`;
  const after = await deliveries('rack-7', 'left');
  expect(after.map((d) => d.kind)).toEqual(['host_down', 'host_up']);
  expect(after[1].notice.title).toBe('host rack-7 is back: 2 agents (2 not checked yet)');
  expect(after[1].notice.text).toMatch(/; rack7-a not checked yet, rack7-b not checked yet$/);
}, 60_000);

it('an agent the host came back without ("not checked yet") and then found dead is told on its own', async () => {
  await channel('found');
  const { sql } = stack.db;
  const [{ token }] = await sql`select token from public.create_api_token('runner', null, null, 'rack-5', null, p_new_agents => true)`;
  await sql`select public.runner_register(${token}, ${sql.json([{ name: 'rack5-gone' }])})`;
  await sql`select public.runner_heartbeat(${token}, null, 1)`;
  await sql`select public.agent_report(${token}, 'rack5-gone', 'started')`;
  // the runner falls silent, its agent with it: one host notice, the agent folded under it
  await sql`update public.runners set last_seen_at = now() - interval '1 minute' where host = 'rack-5'`;
  await sql`update public.agent_status set stale_at = now() - interval '1 second' where agent_name = 'rack5-gone'`;
  await sql`select public.agent_status_sweep()`;
  // a new runner there: the host is back, the agent not checked yet; then it finds the process gone
  await sql`select public.runner_register(${token}, ${sql.json([{ name: 'rack5-gone' }])})`;
  await sql`select public.agent_report(${token}, 'rack5-gone', 'crashed', p_message => 'ended while the runner was not running')`;
  const rows = await sql`select d.kind, d.notice from public.alert_deliveries d join public.alert_channels c on c.id = d.channel_id
                         where c.name = 'found' order by d.id`;
  expect(rows.map((d) => d.kind)).toEqual(['host_down', 'host_up', 'down']);
  expect(rows[1].notice.title).toBe('host rack-5 is back: 1 agents (1 not checked yet)');
  expect(rows[2].notice).toMatchObject({ title: 'rack5-gone is down: error', agent: 'rack5-gone' });
}, 60_000);
