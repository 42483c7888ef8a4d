// The runner's reports reach the database once each, in order per agent, however often they are
// sent: a batch whose answer was lost (applied, but the runner never heard) is sent again with the
// same ids. Reports of agents that end together share calls (issue 22), and a report the database
// refuses, or cannot apply now, costs no other agent anything.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RunnerApi } from '../../runner/daemon/api.ts';
import { Reporter } from '../../runner/daemon/reporter.ts';
import { eventsOf, registerRunner } from '../helpers/agents.ts';
import { type CountingProxy, countingProxy } from '../helpers/counting-proxy.ts';
import { useTestStack } from '../helpers/stack.ts';
import { waitFor } from './helpers.ts';
import { agent, fixtureAgent, makeHost } from './host.ts';

const stack = useTestStack();

let proxy: CountingProxy;
beforeAll(async () => {
  proxy = await countingProxy(stack.url);
});
afterAll(() => proxy.stop());

const startedOrCrashed = async (name: string) =>
  (await eventsOf(stack.db.sql, name)).map((e) => e.kind).filter((k) => k === 'started' || k === 'crashed');

it('a batch whose answer was lost is sent again and applied once: one started, one crashed, one restart', async () => {
  const { sql } = stack.db;
  const token = await registerRunner(sql, 'reporter-host', ['reporter-agent', 'reporter-other']);
  const api = new RunnerApi({ url: stack.url, anonKey: stack.anonKey, token });
  const lost = new Set<string>();
  const reporter = new Reporter(
    async (reports) => {
      const answers = await api.reportBatch(reports);
      // every batch's first answer goes missing on the way back, as through a frozen proxy
      const key = reports.map((report) => report.report_id).join();
      if (!lost.has(key)) {
        lost.add(key);
        throw new Error('the answer was lost');
      }
      return answers;
    },
    () => {},
  );
  try {
    reporter.report('reporter-agent', { event: 'started', pid: 4242 });
    reporter.report('reporter-agent', { event: 'crashed', exitCode: 9, message: 'killed' });
    reporter.report('reporter-other', { event: 'started', pid: 4300 });
    reporter.report('reporter-agent', { event: 'started', pid: 4243 });
    expect(await reporter.flush(30_000)).toBe(true);
  } finally {
    reporter.close();
  }
  expect(lost.size).toBeGreaterThanOrEqual(1);
  expect(await startedOrCrashed('reporter-agent')).toEqual(['started', 'crashed', 'started']);
  expect(await startedOrCrashed('reporter-other')).toEqual(['started']);
  const [row] = await sql`select restarts_total, pid from public.agent_status where agent_name = 'reporter-agent'`;
  expect(row).toEqual({ restarts_total: 1, pid: 4243 });
}, 60_000);

it("a report the database refuses, or cannot apply now, holds back no other agent's; the failed one is sent again in order", async () => {
  const { sql } = stack.db;
  const token = await registerRunner(sql, 'poison-reporter-host', ['poisoned', 'healthy']);
  const api = new RunnerApi({ url: stack.url, anonKey: stack.anonKey, token });
  // a fault no refusal explains (a bug, say), while the flag is set: the database cannot record crashes
  await sql`create table public.test_fault (on_ boolean)`;
  await sql`insert into public.test_fault values (true)`;
  await sql`create function public.test_fault() returns trigger language plpgsql security definer as $$
    begin
      if new.kind = 'crashed' and (select on_ from public.test_fault) then
        raise exception using errcode = 'XX000', message = 'injected fault';
      end if;
      return new;
    end $$`;
  await sql`create trigger test_fault before insert on public.agent_events for each row execute function public.test_fault()`;
  const log: string[] = [];
  // each call's reports (agent:event), and the answers that said to send one again
  const calls: string[][] = [];
  let busy = 0;
  let retries = 0;
  const reporter = new Reporter(
    async (reports) => {
      calls.push(reports.map((report) => `${report.agent_name}:${report.event}`));
      busy++;
      try {
        const answers = await api.reportBatch(reports);
        retries += answers.filter((answer) => 'retry' in answer).length;
        return answers;
      } finally {
        busy--;
      }
    },
    (line) => log.push(line),
  );
  try {
    reporter.report('poisoned', { event: 'started', pid: 100 });
    reporter.report('healthy', { event: 'started', pid: 200 });
    expect(await reporter.flush(10_000)).toBe(true);
    // refused (agent_report refuses a signal name that is no signal): dropped and said, the next one goes
    reporter.report('poisoned', { event: 'terminated', exitSignal: 'not a signal' });
    reporter.report('poisoned', { event: 'crashed', exitCode: 1 });
    reporter.report('poisoned', { event: 'started', pid: 101 });
    reporter.report('healthy', { event: 'stable', pid: 200 });
    await waitFor('the healthy agent to be stable', async () => (await eventsOf(sql, 'healthy')).some((e) => e.kind === 'stable'));
    expect(log.some((line) => /poisoned: the database refused the terminated report: .*exit_signal/.test(line))).toBe(true);
    // the row reads stable once the batch commits, a moment before its answer reaches the reporter
    await waitFor('the crash report to have failed once', async () =>
      log.some((line) => /poisoned: could not send the crashed report \(.*injected fault\); retrying/.test(line)),
    );
    // The crash, and the start after it, wait and are tried again, backing off; meanwhile another
    // agent's report leaves at once (here: in the very call report() makes, none being in flight).
    await waitFor('the crash to have failed four times', () => retries >= 8 && busy === 0, 20_000, 5);
    const before = calls.length;
    reporter.report('healthy', { event: 'exited', exitCode: 0 });
    expect(calls.slice(before)).toEqual([['healthy:exited']]);
    // an agent's own report (through the channel) is answered from its item; for the agent whose
    // reports back off it is refused at once (its SDK keeps it), never sent ahead of them
    await expect(reporter.submit({ agent_name: 'healthy', event: 'activity', last_activity: 'indexing' })).resolves.toMatchObject({
      agent_name: 'healthy',
      last_activity: 'indexing',
    });
    const callsBefore = calls.length;
    await expect(reporter.submit({ agent_name: 'poisoned', event: 'activity', last_activity: 'indexing' })).rejects.toThrow(
      /reports before this one/,
    );
    expect(calls.length).toBe(callsBefore);
    expect(await startedOrCrashed('poisoned')).toEqual(['started']);
    reporter.report('healthy', { event: 'started', pid: 201 });
    await waitFor('the healthy agent to start again', async () => (await agent(sql, 'healthy')).pid === 201);
    expect(await reporter.flush(500)).toBe(false);

    await sql`update public.test_fault set on_ = false`;
    expect(await reporter.flush(30_000)).toBe(true);
  } finally {
    reporter.close();
    await sql`drop trigger test_fault on public.agent_events`;
    await sql`drop function public.test_fault()`;
    await sql`drop table public.test_fault`;
  }
  expect(await startedOrCrashed('poisoned')).toEqual(['started', 'crashed', 'started']);
  expect(await startedOrCrashed('healthy')).toEqual(['started', 'started']);
  expect((await agent(sql, 'poisoned')).pid).toBe(101);
}, 60_000);

it('agents crashing at once: their reports arrive in fewer calls than reports, each applied once, in order per agent', async () => {
  const { sql } = stack.db;
  const specs = Array.from({ length: 8 }, () => fixtureAgent('forever.sh', { autostart: true, restart: 'never' }));
  const host = await makeHost({ ...stack, url: proxy.url }, specs, { heartbeat_interval: '30s' });
  await host.start();
  const pids = await waitFor(
    'every agent to run',
    async () => {
      const rows = await sql`select agent_name, pid, status from public.agent_status where agent_name in ${sql(specs.map((s) => s.name))}`;
      return (
        rows.length === specs.length && rows.every((row) => row.status === 'running' && row.pid) && rows.map((row) => row.pid as number)
      );
    },
    30_000,
  );
  const from = proxy.calls.length;
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await waitFor(
    'every crash to be recorded',
    async () => {
      const rows = await sql`select status from public.agent_status where agent_name in ${sql(specs.map((s) => s.name))}`;
      return rows.every((row) => row.status === 'error');
    },
    30_000,
  );
  const reportCalls = proxy.calls.slice(from).filter((call) => call === 'agent_report' || call === 'runner_report_batch');
  // one call each was 8 calls
  expect(reportCalls.length).toBeGreaterThanOrEqual(1);
  expect(reportCalls.length).toBeLessThan(specs.length);
  for (const spec of specs) expect(await startedOrCrashed(spec.name)).toEqual(['started', 'crashed']);
}, 90_000);
