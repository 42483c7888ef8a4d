// The runner's reports reach the database once each, however often they are sent: a report whose
// answer was lost (applied, but the runner never heard) is sent again with the same id.
import { expect, it } from 'vitest';
import { RunnerApi } from '../../runner/daemon/api.ts';
import { Reporter } from '../../runner/daemon/reporter.ts';
import { eventsOf, registerRunner } from '../helpers/agents.ts';
import { useTestStack } from '../helpers/stack.ts';

const stack = useTestStack();

it('a report whose answer was lost is sent again and applied once: one started, one crashed, one restart', async () => {
  const { sql } = stack.db;
  const token = await registerRunner(sql, 'reporter-host', ['reporter-agent']);
  const api = new RunnerApi({ url: stack.url, anonKey: stack.anonKey, token });
  const lost = new Set<string>();
  const reporter = new Reporter(
    async (agent, report) => {
      const answer = await api.report(agent, report);
      // every report's first answer goes missing on the way back, as through a frozen proxy
      if (!lost.has(report.reportId!)) {
        lost.add(report.reportId!);
        throw new Error('the answer was lost');
      }
      return answer;
    },
    () => {},
  );
  try {
    reporter.report('reporter-agent', { event: 'started', pid: 4242 });
    reporter.report('reporter-agent', { event: 'crashed', exitCode: 9, message: 'killed' });
    reporter.report('reporter-agent', { event: 'started', pid: 4243 });
    expect(await reporter.flush(30_000)).toBe(true);
  } finally {
    reporter.close();
  }
  expect(lost.size).toBe(3);
  const kinds = (await eventsOf(sql, 'reporter-agent')).map((e) => e.kind).filter((k) => k === 'started' || k === 'crashed');
  expect(kinds).toEqual(['started', 'crashed', 'started']);
  const [row] = await sql`select restarts_total, pid from public.agent_status where agent_name = 'reporter-agent'`;
  expect(row).toEqual({ restarts_total: 1, pid: 4243 });
}, 60_000);
