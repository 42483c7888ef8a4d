// runner_report_batch (issue 22): a runner's reports of several agents in one call. Each item is
// agent_report's, applied once per report_id, in order per agent; one the database refuses costs only
// itself; one that fails for another reason holds back only its own agent's later items, so the
// runner can send them again in order. tests/runner/reporter.test.ts drives it through the runner.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eventsOf, registerRunner } from '../helpers/agents.ts';
import { useTestDatabase } from '../helpers/database.ts';

describe('runner_report_batch', () => {
  const db = useTestDatabase();
  const batch = async (token: string, reports: unknown[]) =>
    (await db.sql`select public.runner_report_batch(${token}, ${db.sql.json(reports as never)}) as answers`)[0].answers as Record<
      string,
      Record<string, unknown>
    >[];
  const kinds = async (agent: string) =>
    (await eventsOf(db.sql, agent)).map((e) => e.kind).filter((kind) => kind !== 'registered' && kind !== 'transition');

  it('applies the reports of several agents in one call, in order per agent, and a batch sent again applies nothing twice', async () => {
    const token = await registerRunner(db.sql, 'batch-host', ['batch-a', 'batch-b']);
    const reports = [
      { agent_name: 'batch-b', event: 'started', pid: 20, report_id: randomUUID() },
      { agent_name: 'batch-a', event: 'started', pid: 10, report_id: randomUUID() },
      { agent_name: 'batch-b', event: 'crashed', exit_code: 1, details: { restart_in_s: 1 }, report_id: randomUUID() },
      { agent_name: 'batch-a', event: 'crashed', exit_code: 2, report_id: randomUUID() },
      { agent_name: 'batch-b', event: 'started', pid: 21, report_id: randomUUID() },
    ];
    const first = await batch(token, reports);
    expect(first.map((answer) => Object.keys(answer))).toEqual([['agent'], ['agent'], ['agent'], ['agent'], ['agent']]);
    // each answer is the agent's state after that very report
    expect(first.map((answer) => [answer.agent.agent_name, answer.agent.status])).toEqual([
      ['batch-b', 'running'],
      ['batch-a', 'running'],
      ['batch-b', 'error'],
      ['batch-a', 'error'],
      ['batch-b', 'warning'], // restarted after a crash, not yet stable
    ]);
    // the answer was lost on the way back: the runner sends the same batch again, and hears where each agent stands
    const again = await batch(token, reports);
    expect(again.map((answer) => answer.agent.status)).toEqual(['warning', 'error', 'warning', 'error', 'warning']);
    const [a, b] = [await kinds('batch-a'), await kinds('batch-b')];
    expect(a.filter((k) => k === 'started' || k === 'crashed')).toEqual(['started', 'crashed']);
    expect(b.filter((k) => k === 'started' || k === 'crashed')).toEqual(['started', 'crashed', 'started']);
    const rows = await db.sql`select agent_name, restarts_total, pid from public.agent_status
                              where agent_name in ('batch-a', 'batch-b') order by agent_name`;
    expect(rows).toEqual([
      { agent_name: 'batch-a', restarts_total: 0, pid: null }, // crashed: no process
      { agent_name: 'batch-b', restarts_total: 1, pid: 21 },
    ]);
  });

  it("a refused report costs only itself: the other agents' reports and its own agent's later ones apply", async () => {
    const token = await registerRunner(db.sql, 'poison-host', ['poison-a', 'poison-b']);
    await registerRunner(db.sql, 'other-host', ['not-mine']);
    const answers = await batch(token, [
      { agent_name: 'poison-a', event: 'started', pid: 30 },
      { agent_name: 'poison-b', event: 'started', pid: 40 },
      { agent_name: 'poison-a', event: 'crashed', details: { restart_in_s: 'soon' } },
      { agent_name: 'not-mine', event: 'started' },
      'not a report',
      { agent_name: 'poison-b', event: 'stable', pid: 'forty' },
      { agent_name: 'poison-a', event: 'exited', exit_code: 0 },
      { agent_name: 'poison-b', event: 'warning', message: 'disk nearly full' },
    ]);
    expect(answers.map((answer) => Object.keys(answer)[0])).toEqual([
      'agent',
      'agent',
      'error',
      'error',
      'error',
      'error',
      'agent',
      'agent',
    ]);
    expect(answers[2].error).toMatchObject({ sqlstate: '22023', message: expect.stringMatching(/restart_in_s/) });
    // another host's agent: the same refusal as for a name that does not exist
    expect(answers[3].error).toMatchObject({ sqlstate: '28000' });
    expect(answers[5].error).toMatchObject({ sqlstate: '22P02' });
    expect(await kinds('poison-a')).toEqual(['started', 'exited']);
    expect(await kinds('poison-b')).toEqual(['started', 'warning']);
    expect(await kinds('not-mine')).toEqual([]);
  });

  it("a report that fails for another reason holds back only its agent's later reports, answered retry, and applies once sent again", async () => {
    const token = await registerRunner(db.sql, 'fault-host', ['fault-a', 'fault-b']);
    // a fault no refusal explains (a bug, say): the history refuses crashes with an internal error
    await db.sql`create function public.test_fault() returns trigger language plpgsql as $$
      begin
        if new.kind = 'crashed' and current_setting('test.fault', true) = 'on' then
          raise exception using errcode = 'XX000', message = 'injected fault';
        end if;
        return new;
      end $$`;
    await db.sql`create trigger test_fault before insert on public.agent_events for each row execute function public.test_fault()`;
    try {
      const reports = [
        { agent_name: 'fault-a', event: 'started', pid: 50, report_id: randomUUID() },
        { agent_name: 'fault-a', event: 'crashed', exit_code: 3, report_id: randomUUID() },
        { agent_name: 'fault-b', event: 'started', pid: 60, report_id: randomUUID() },
        { agent_name: 'fault-a', event: 'started', pid: 51, report_id: randomUUID() },
      ];
      const answers = await db.sql.begin(async (tx) => {
        await tx`select set_config('test.fault', 'on', true)`;
        return (await tx`select public.runner_report_batch(${token}, ${tx.json(reports)}) as answers`)[0].answers;
      });
      expect(answers.map((answer: object) => Object.keys(answer)[0])).toEqual(['agent', 'retry', 'agent', 'retry']);
      expect(answers[1].retry).toMatchObject({ sqlstate: 'XX000', message: 'injected fault' });
      expect(answers[3].retry.message).toMatch(/an earlier report of this agent/);
      expect(await kinds('fault-a')).toEqual(['started']);
      expect(await kinds('fault-b')).toEqual(['started']);
      // the fault gone, the whole batch sent again: what was applied is not applied twice
      const retried = await batch(token, reports);
      expect(retried.map((answer) => Object.keys(answer)[0])).toEqual(['agent', 'agent', 'agent', 'agent']);
      expect(await kinds('fault-a')).toEqual(['started', 'crashed', 'started']);
      expect(await kinds('fault-b')).toEqual(['started']);
    } finally {
      await db.sql`drop trigger test_fault on public.agent_events`;
      await db.sql`drop function public.test_fault()`;
    }
  });

  it('a report whose lock wait gave up (55P03) is answered retry, not refused: the runner sends it again and it applies', async () => {
    const token = await registerRunner(db.sql, 'lock-host', ['lock-a', 'lock-b']);
    // a stop delivered with a heartbeat answer, which lock-a's stopped report completes: a row the
    // batch does not lock first, held meanwhile by another transaction (the sweep expiring it, say)
    const [command] = await db.sql`insert into public.agent_commands (agent_id, action)
      select id, 'stop' from public.agent_status where agent_name = 'lock-a' returning id`;
    await db.sql`update public.agent_commands set via_heartbeat = true where id = ${command.id}`;
    const reports = [
      { agent_name: 'lock-a', event: 'stopped', report_id: randomUUID() },
      { agent_name: 'lock-b', event: 'started', pid: 80, report_id: randomUUID() },
      { agent_name: 'lock-a', event: 'started', pid: 71, report_id: randomUUID() },
    ];
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from public.agent_commands where id = ${command.id} for update`;
      const answers = await batch(token, reports);
      // refused ({error}) would make the runner drop the stopped report for good
      expect(answers.map((answer) => Object.keys(answer)[0])).toEqual(['retry', 'agent', 'retry']);
      expect(answers[0].retry).toMatchObject({ sqlstate: '55P03' });
      expect(answers[2].retry.message).toMatch(/an earlier report of this agent/);
    } finally {
      await holder`rollback`;
      holder.release();
    }
    expect(await kinds('lock-a')).toEqual(['command_requested']);
    const again = await batch(token, reports);
    expect(again.map((answer) => Object.keys(answer)[0])).toEqual(['agent', 'agent', 'agent']);
    expect(await kinds('lock-a')).toEqual(['command_requested', 'stopped', 'command_succeeded', 'started']);
    expect(await kinds('lock-b')).toEqual(['started']);
  });

  it('refuses a whole batch only when the batch itself is wrong: no runner token, not an array, more than 50', async () => {
    const token = await registerRunner(db.sql, 'shape-host', ['shape-a']);
    const refusal = (tokenUsed: string, reports: unknown) =>
      db.sql`select public.runner_report_batch(${tokenUsed}, ${db.sql.json(reports as never)})`.then(
        () => undefined,
        (error) => (error as { code: string }).code,
      );
    expect(await refusal('asr_forged', [])).toBe('28000');
    expect(await refusal(token, { agent_name: 'shape-a', event: 'started' })).toBe('22023');
    expect(
      await refusal(
        token,
        Array.from({ length: 51 }, () => ({ agent_name: 'shape-a', event: 'stable' })),
      ),
    ).toBe('22023');
    expect(await batch(token, [])).toEqual([]);
  });
});
