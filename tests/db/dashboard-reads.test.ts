// The SQL behind the dashboard's readings: availability from hand-made histories, history folded
// and paged, resources bounded to one sample a minute kept a day, and logs on demand through a
// short-lived table. Called as the superuser (an administrator), except where a role is the point.
import { describe, expect, it } from 'vitest';
import type { Sql } from 'postgres';
import { asRole, useTestDatabase } from '../helpers/database.ts';
import { failure, registerRunner } from '../helpers/agents.ts';

const db = useTestDatabase();
const UNTIL = '2026-11-30T12:00:00Z';

/** An agent created at `created` with a hand-made history: [minutes before UNTIL, from, to, kind?]. */
async function history(sql: Sql, name: string, created: string, changes: [number, string | null, string, string?][]) {
  const [{ id }] = await sql`insert into public.agent_status (agent_name, status, created_at)
                             values (${name}, ${changes.at(-1)?.[2] ?? 'stopped'}, ${created}) returning id`;
  for (const [minutes, from, to, kind] of changes) {
    await sql`insert into public.agent_events (agent_id, at, kind, source, from_status, to_status)
              values (${id}, ${UNTIL}::timestamptz - make_interval(mins => ${minutes}), ${kind ?? to}, 'agent', ${from}, ${to})`;
  }
  return id as number;
}

async function availability(sql: Sql, name: string) {
  const [{ a }] = await sql`select public.agent_availability(${name}, ${UNTIL}) as a`;
  return a as {
    windows: Record<'24h' | '7d' | '30d', { seconds: Record<string, number>; known_s: number; up_percent: number | null }>;
    strip: { from: string; to: string; status: string }[];
  };
}

describe('agent_availability', () => {
  it('counts time in each status per window from the history, and strips the last 24 hours', async () => {
    // created 2 days ago stopped; started 36 h ago; crashed 6 h ago for an hour; warning the last 30 min
    await history(db.sql, 'avail', '2026-11-28T12:00:00Z', [
      [36 * 60, 'stopped', 'running', 'started'],
      [6 * 60, 'running', 'error', 'crashed'],
      [5 * 60, 'error', 'running', 'started'],
      [5 * 60 - 1, 'running', 'running', 'running'], // a health change: same status, no new segment
      [30, 'running', 'warning'],
    ]);
    const a = await availability(db.sql, 'avail');
    expect(a.windows['24h'].seconds).toEqual({ running: (23 * 60 - 30) * 60, error: 3600, warning: 1800 });
    expect(a.windows['24h'].known_s).toBe(86400);
    expect(a.windows['24h'].up_percent).toBe(95.83);
    // 7 days: the agent existed 48 h, 12 of them stopped
    expect(a.windows['7d'].seconds).toEqual({ stopped: 12 * 3600, running: (35 * 60 - 30) * 60, error: 3600, warning: 1800 });
    expect(a.windows['7d'].known_s).toBe(48 * 3600);
    expect(a.windows['7d'].up_percent).toBe(72.92);
    expect(a.windows['30d']).toEqual(a.windows['7d']);
    expect(a.strip.map((s) => [s.status, (Date.parse(s.to) - Date.parse(s.from)) / 60000])).toEqual([
      ['running', 18 * 60],
      ['error', 60],
      ['running', 5 * 60 - 30],
      ['warning', 30],
    ]);
    expect(a.strip[0].from).toBe('2026-11-29T12:00:00+00:00');
  });

  it('takes the status before the window from the last change before it, and nothing before the agent existed', async () => {
    await history(db.sql, 'old-error', '2026-10-01T00:00:00Z', [[40 * 24 * 60, 'stopped', 'error', 'crashed']]);
    const a = await availability(db.sql, 'old-error');
    expect(a.windows['30d']).toEqual({ seconds: { error: 30 * 86400 }, known_s: 30 * 86400, up_percent: 0 });

    const [{ id }] =
      await db.sql`insert into public.agent_status (agent_name, created_at) values ('newborn', ${UNTIL}::timestamptz - interval '1 hour') returning id`;
    const b = await availability(db.sql, 'newborn');
    expect(b.windows['24h']).toEqual({ seconds: { stopped: 3600 }, known_s: 3600, up_percent: 0 });
    expect(id).toBeGreaterThan(0);
  });

  it('reads a live agent past its deadline as stale from the deadline on, as the live view does', async () => {
    const id = await history(db.sql, 'went-quiet', '2026-11-29T00:00:00Z', [[120, 'stopped', 'running', 'started']]);
    await db.sql`update public.agent_status set stale_at = ${UNTIL}::timestamptz - interval '60 minutes' where id = ${id}`;
    const a = await availability(db.sql, 'went-quiet');
    expect(a.strip.map((s) => s.status)).toEqual(['stopped', 'running', 'stale']);
    expect(a.windows['24h'].seconds).toMatchObject({ running: 3600, stale: 3600 });
  });

  it('is for operators only', async () => {
    const refused = await failure(asRole(db.sql, 'anon', {}, (tx) => tx`select public.agent_availability('avail')`));
    expect(refused?.code).toBe('42501');
  });
});

type HistoryRow = { id: number; oldest_id: number; count: number; cycle: string[]; kind: string; message: string | null };

async function page(sql: Sql, name: string, options: { before?: number; kinds?: string; limit?: number } = {}) {
  return (await sql`select * from public.agent_history(${name}, ${options.before ?? null}, ${options.kinds ?? null}, ${options.limit ?? 50})`) as unknown as HistoryRow[];
}

describe('agent_history', () => {
  it('folds a 200-crash loop into one row, keeps the rest apart, and pages with keyset ids', async () => {
    const [{ id }] = await db.sql`insert into public.agent_status (agent_name) values ('looper') returning id`;
    const add = (kind: string, from: string | null, to: string | null, message: string | null, source = 'runner') =>
      db.sql`insert into public.agent_events (agent_id, kind, source, from_status, to_status, message)
             values (${id}, ${kind}, ${source}, ${from}, ${to}, ${message})`;
    await add('command_requested', null, null, 'start requested', 'operator');
    await add('started', 'stopped', 'running', 'started (pid 100)');
    for (let n = 0; n < 200; n++) {
      await add('crashed', 'running', 'error', `exited with code ${n % 3}`);
      await add('started', 'error', 'running', `restarted by policy (pid ${1000 + n}, attempt ${n + 1})`);
    }
    await add('warning', 'running', 'warning', 'slow', 'agent');
    await add('warning', 'warning', 'warning', 'slow', 'agent');
    await add('warning', 'warning', 'warning', 'slow', 'agent');

    const rows = await page(db.sql, 'looper');
    expect(rows.map((r) => [r.kind, r.count, r.cycle])).toEqual([
      ['warning', 2, ['warning']],
      ['warning', 1, ['warning']],
      ['started', 400, ['crashed', 'started']],
      ['started', 1, ['started']],
      ['command_requested', 1, ['command_requested']],
    ]);

    const first = await page(db.sql, 'looper', { limit: 2 });
    expect(first.map((r) => r.count)).toEqual([2, 1]);
    const second = await page(db.sql, 'looper', { limit: 2, before: first[1].oldest_id });
    expect(second.map((r) => [r.kind, r.count])).toEqual([
      ['started', 400],
      ['started', 1],
    ]);
    const third = await page(db.sql, 'looper', { limit: 2, before: second[1].oldest_id });
    expect(third.map((r) => r.kind)).toEqual(['command_requested']);
  });

  it('filters by kind: status changes, problems, commands, operator actions', async () => {
    const kinds = async (filter: string) => (await page(db.sql, 'looper', { kinds: filter })).map((r) => [r.kind, r.count]);
    expect(await kinds('commands')).toEqual([['command_requested', 1]]);
    expect(await kinds('operator')).toEqual([['command_requested', 1]]);
    expect(await kinds('problems')).toEqual([
      ['warning', 2],
      ['warning', 1],
      ['crashed', 200],
    ]);
    expect(await kinds('status')).toEqual([
      ['warning', 1],
      ['started', 400],
      ['started', 1],
    ]);
    expect((await failure(page(db.sql, 'looper', { kinds: 'everything' })))?.message).toMatch(/kinds must be status, problems/);
  });
});

describe('runner_report_resources', () => {
  it('keeps the latest figures and one sample a minute for a day, for agents of this runner only', async () => {
    const token = await registerRunner(db.sql, 'res-host', ['busy']);
    await registerRunner(db.sql, 'other-host', ['theirs']);
    const report = (samples: unknown) => db.sql`select public.runner_report_resources(${token}, ${db.sql.json(samples as never)}) as n`;
    const [{ id }] = await db.sql`select id from public.agent_status where agent_name = 'busy'`;
    await db.sql`insert into public.agent_resource_samples (agent_id, minute, cpu_percent, memory_bytes)
                 values (${id}, date_trunc('minute', now()) - interval '25 hours', 1, 1), (${id}, date_trunc('minute', now()) - interval '2 hours', 2, 2)`;
    expect((await report([{ name: 'busy', cpu_percent: 50, memory_bytes: 1000, processes: 2 }]))[0].n).toBe(1);
    expect((await report([{ name: 'busy', cpu_percent: 75.5, memory_bytes: 2000, processes: 3 }]))[0].n).toBe(1);
    const [latest] = await db.sql`select cpu_percent, memory_bytes::int, processes from public.agent_resources where agent_id = ${id}`;
    expect(latest).toEqual({ cpu_percent: 75.5, memory_bytes: 2000, processes: 3 });
    const samples = await db.sql`select cpu_percent from public.agent_resource_samples where agent_id = ${id} order by minute`;
    expect(samples.map((s) => s.cpu_percent)).toEqual([2, 75.5]);

    expect((await failure(report([{ name: 'theirs', cpu_percent: 1, memory_bytes: 1 }])))?.code).toBe('28000');
    expect((await failure(report([{ name: 'busy', cpu_percent: -1, memory_bytes: 1 }])))?.message).toMatch(/out of range/);
    expect((await failure(report([{ name: 'busy', cpu_percent: '5', memory_bytes: 1 }])))?.message).toMatch(/needs numbers/);
  });
});

describe('logs on demand', () => {
  it('queues a request for the runner, which claims it once and answers with bounded lines', async () => {
    const token = await registerRunner(db.sql, 'log-host', ['talker']);
    const [{ id }] = await db.sql`select public.request_agent_logs('talker', 3) as id`;
    const claimed = await db.sql`select * from public.runner_claim_log_requests(${token})`;
    expect(claimed.map((c) => ({ ...c }))).toEqual([{ id, agent_name: 'talker', lines: 3 }]);
    expect(await db.sql`select * from public.runner_claim_log_requests(${token})`).toHaveLength(0);

    const tooMany = await failure(db.sql`select public.runner_answer_log_request(${token}, ${id}, ${db.sql.json(['a', 'b', 'c', 'd'])})`);
    expect(tooMany?.message).toMatch(/at most 3 strings/);
    await db.sql`select public.runner_answer_log_request(${token}, ${id}, ${db.sql.json(['one', 'two'])}, ${db.sql.json(['oops'])})`;
    const [answer] = await db.sql`select * from public.operator_agent_logs(${id})`;
    expect(answer).toMatchObject({ agent_name: 'talker', stdout: ['one', 'two'], stderr: ['oops'], error: null });
    expect(answer.answered_at).not.toBeNull();
    expect((await failure(db.sql`select public.runner_answer_log_request(${token}, ${id}, null, null)`))?.message).toMatch(
      /not waiting for an answer/,
    );
  });

  it('refuses agents without a runner, bad line counts, and an eleventh waiting request; forgets requests after 10 minutes', async () => {
    await db.sql`insert into public.agent_status (agent_name) values ('loner')`;
    expect((await failure(db.sql`select public.request_agent_logs('loner')`))?.message).toMatch(/no runner manages agent 'loner'/);
    expect((await failure(db.sql`select public.request_agent_logs('talker', 501)`))?.message).toMatch(/between 1 and 500/);
    for (let n = 0; n < 10; n++) await db.sql`select public.request_agent_logs('talker')`;
    expect((await failure(db.sql`select public.request_agent_logs('talker')`))?.message).toMatch(
      /10 log requests for 'talker' are already waiting/,
    );
    await db.sql`update public.agent_log_requests set requested_at = now() - interval '11 minutes'`;
    await db.sql`select public.request_agent_logs('talker')`;
    expect((await db.sql`select count(*)::int as n from public.agent_log_requests`)[0].n).toBe(1);
  });

  it('is readable by operators only', async () => {
    const rows = await asRole(db.sql, 'anon', {}, (tx) => tx`select count(*)::int as n from public.agent_log_requests`).catch((e) => e);
    expect((rows as { code?: string }).code ?? 'readable').toBe('42501');
    const asUser = await asRole(
      db.sql,
      'authenticated',
      { sub: '00000000-0000-0000-0000-000000000001' },
      (tx) => tx`select count(*)::int as n from public.agent_log_requests`,
    );
    expect(asUser[0].n).toBe(0);
  });
});
