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
  const [runner] = await sql`select status from public.runner_status_live where host = ${host.host}`;
  expect(runner.status).toBe('offline');
  // past its silence deadline and through the sweep: said goodbye, so no incident
  await sql`select pg_sleep(2.5)`;
  await sql`select public.agent_status_sweep()`;
  expect(await deliveries(host.host, 'pager')).toEqual([]);

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
  expect(rows[1].notice).toMatchObject({ title: 'host rack-9 is back: 2 agents, not all well', severity: 'warning' });
  expect(rows[1].notice.text).toMatch(/; not well: rack9-loop is crash-looping$/);
}, 60_000);
