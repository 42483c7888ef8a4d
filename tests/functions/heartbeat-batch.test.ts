// public.agent_heartbeat_batch, which the heartbeat function sends concurrent heartbeats through: the
// same answers as agent_heartbeat one by one, and a refused heartbeat fails alone, writing nothing.
// Steady heartbeats take a set-based path (agent_private.steady_heartbeats): for every state a
// heartbeat can meet and every shape it can have, it must leave exactly what apply_event leaves.
import { describe, it, expect, beforeAll } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { createToken, registerRunner } from '../helpers/agents.ts';

const db = useTestDatabase();
const tokens: Record<string, string> = {};

beforeAll(async () => {
  for (const agent of ['b-1', 'b-2', 'b-3']) tokens[agent] = await createToken(db.sql, 'agent', { agent });
});

async function batch(items: unknown[]) {
  const [{ answers }] = await db.sql`select public.agent_heartbeat_batch(${db.sql.json(items as never)}) as answers`;
  return answers as ({ agent: Record<string, unknown> } | { error: { sqlstate: string; message: string; hint: string | null } })[];
}

describe('agent_heartbeat_batch', () => {
  it('applies every heartbeat and answers in the order they were sent', async () => {
    const answers = await batch([
      { token: tokens['b-3'], agent_name: 'b-3', health: 30 },
      { token: tokens['b-1'], agent_name: 'b-1', status: 'warning', health: 10, last_activity: 'slow' },
      { token: tokens['b-2'], agent_name: 'b-2' },
    ]);
    expect(answers.map((a) => 'agent' in a && a.agent.agent_name)).toEqual(['b-3', 'b-1', 'b-2']);
    expect(answers[1]).toMatchObject({ agent: { status: 'warning', health: 10, last_activity: 'slow' } });
    const rows = await db.sql`select agent_name, status, health from public.agent_status where agent_name like 'b-%' order by agent_name`;
    expect(rows).toEqual([
      { agent_name: 'b-1', status: 'warning', health: 10 },
      { agent_name: 'b-2', status: 'running', health: 0 },
      { agent_name: 'b-3', status: 'running', health: 30 },
    ]);
  });

  it('answers a refused heartbeat with its own error and still applies the others', async () => {
    await db.sql`select public.force_agent_status('b-2', 'stopped')`;
    const [before] = await db.sql`select count(*)::int as events from public.agent_events`;
    const answers = await batch([
      { token: tokens['b-1'], agent_name: 'b-2' },
      { token: tokens['b-3'], agent_name: 'b-3', health: 77 },
      { token: tokens['b-3'], agent_name: 'b-3', health: 101 },
      'not an object',
    ]);
    expect(answers[0]).toMatchObject({
      error: { sqlstate: '28000', message: expect.stringMatching(/not allowed to speak for agent 'b-2'/) },
    });
    expect(answers[1]).toMatchObject({ agent: { agent_name: 'b-3', health: 77 } });
    expect(answers[2]).toMatchObject({ error: { sqlstate: '22023', message: 'health must be between 0 and 100, got 101' } });
    expect(answers[3]).toMatchObject({ error: { sqlstate: '22023' } });
    const [b2] = await db.sql`select status from public.agent_status where agent_name = 'b-2'`;
    expect(b2.status).toBe('stopped');
    // only b-3's health change was recorded
    const [after] = await db.sql`select count(*)::int as events from public.agent_events`;
    expect(after.events - before.events).toBe(1);
  });

  it('applies an agent named twice in one batch in the order sent, beside steady ones', async () => {
    await batch([{ token: tokens['b-1'], agent_name: 'b-1', health: 40 }]);
    const answers = await batch([
      { token: tokens['b-3'], agent_name: 'b-3' },
      { token: tokens['b-1'], agent_name: 'b-1', health: 41 },
      { token: tokens['b-1'], agent_name: 'b-1', last_activity: 'second' },
      { token: tokens['b-1'], agent_name: 'b-1', health: 'forty' },
    ]);
    expect(answers[0]).toMatchObject({ agent: { agent_name: 'b-3' } });
    expect(answers[1]).toMatchObject({ agent: { health: 41 } });
    expect(answers[2]).toMatchObject({ agent: { health: 41, last_activity: 'second' } });
    expect(answers[3]).toMatchObject({ error: { sqlstate: '22P02' } });
    const [b1] = await db.sql`select health, last_activity from public.agent_status where agent_name = 'b-1'`;
    expect(b1).toEqual({ health: 41, last_activity: 'second' });
  });

  it("refuses a steady agent's heartbeat under another agent's, a revoked, or another host's runner token", async () => {
    const runnerA = await registerRunner(db.sql, 'host-a', ['managed-a']);
    const runnerB = await registerRunner(db.sql, 'host-b', ['managed-b']);
    const revoked = await createToken(db.sql, 'agent', { agent: 'b-4' });
    // all of them running and steady: only the token stands between a heartbeat and the fast path
    await batch([
      { token: runnerA, agent_name: 'managed-a' },
      { token: revoked, agent_name: 'b-4' },
      { token: tokens['b-3'], agent_name: 'b-3' },
    ]);
    await db.sql`update public.api_tokens set revoked_at = now() where token_hash = sha256(convert_to(${revoked}, 'UTF8'))`;
    const [before] = await db.sql`
      select json_agg(a order by agent_name)::text as rows from public.agent_status a where agent_name in ('managed-a', 'b-4', 'b-3')`;
    const answers = await batch([
      { token: runnerB, agent_name: 'managed-a' },
      { token: revoked, agent_name: 'b-4' },
      { token: tokens['b-1'], agent_name: 'b-3' },
      { token: 'asa_unknown', agent_name: 'b-3-not-there' },
    ]);
    for (const answer of answers) expect(answer).toMatchObject({ error: { sqlstate: '28000' } });
    const [after] = await db.sql`
      select json_agg(a order by agent_name)::text as rows from public.agent_status a where agent_name in ('managed-a', 'b-4', 'b-3')`;
    expect(after.rows).toBe(before.rows);
  });

  it('refuses more than 50 heartbeats, and anything but an array', async () => {
    await expect(batch(Array.from({ length: 51 }, () => ({})))).rejects.toMatchObject({
      code: '22023',
      message: 'at most 50 heartbeats per batch, got 51',
    });
    await expect(db.sql`select public.agent_heartbeat_batch('{}'::jsonb)`).rejects.toMatchObject({ code: '22023' });
  });

  it('fails whole when a lock wait gives up (55P03), nothing of it written: a lock wait is no refusal of that heartbeat', async () => {
    for (const agent of ['lock-1', 'lock-2']) tokens[agent] = await createToken(db.sql, 'agent', { agent });
    await batch(['lock-1', 'lock-2'].map((agent) => ({ token: tokens[agent], agent_name: agent })));
    // lock-2's token is due its once-a-minute last_used_at, and another transaction holds its row
    await db.sql`update public.api_tokens t set last_used_at = now() - interval '1 hour'
                 from public.agent_status a where a.id = t.agent_id and a.agent_name = 'lock-2'`;
    const [before] = await db.sql`select count(*)::int as events from public.agent_events`;
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from public.api_tokens t join public.agent_status a on a.id = t.agent_id
                   where a.agent_name = 'lock-2' for update of t`;
      // answered {error} per item, the runner that relayed it would drop it as refused; failed whole,
      // the heartbeat function answers 503 and the runner keeps its relayed heartbeats for the next call
      await expect(
        batch([
          { token: tokens['lock-1'], agent_name: 'lock-1', health: 40 },
          { token: tokens['lock-2'], agent_name: 'lock-2', status: 'warning', health: 20 },
        ]),
      ).rejects.toMatchObject({ code: '55P03' });
    } finally {
      await holder`rollback`;
      holder.release();
    }
    const rows =
      await db.sql`select agent_name, status, health from public.agent_status where agent_name like 'lock-%' order by agent_name`;
    expect(rows).toEqual([
      { agent_name: 'lock-1', status: 'running', health: 0 },
      { agent_name: 'lock-2', status: 'running', health: 0 },
    ]);
    const [after] = await db.sql`select count(*)::int as events from public.agent_events`;
    expect(after.events).toBe(before.events);
  });

  it("is for the functions' own connection only", async () => {
    const [grants] = await db.sql`
      select has_function_privilege('anon', 'public.agent_heartbeat_batch(jsonb)', 'execute') as anon,
             has_function_privilege('authenticated', 'public.agent_heartbeat_batch(jsonb)', 'execute') as authenticated,
             has_function_privilege('service_role', 'public.agent_heartbeat_batch(jsonb)', 'execute') as service_role`;
    expect(grants).toEqual({ anon: false, authenticated: false, service_role: true });
  });
});

// Where a heartbeat can find an agent: columns set on both twins by one statement (one now()).
const STATES: Record<string, string> = {
  running: "status = 'running', status_source = 'agent'",
  'running by runner': "status = 'running', status_source = 'runner'",
  warning: "status = 'warning', status_source = 'agent', status_reason = 'disk almost full'",
  'warning by sweep': "status = 'warning', status_source = 'sweep', status_reason = 'no activity', inactive_at = null",
  error: "status = 'error', status_source = 'agent', status_reason = 'boom'",
  stopped: "status = 'stopped', status_source = 'agent', stale_at = null, inactive_at = null, pid = null",
  stale: "status = 'stale', status_source = 'sweep', stale_at = null",
  restarting:
    "status = 'warning', status_source = 'runner', unstable_since = now() - interval '1 minute', restart_times = array[now() - interval '20 minutes', now() - interval '1 minute']",
  'old restarts':
    "status = 'running', status_source = 'agent', restart_times = array[now() - interval '20 minutes', now() - interval '2 minutes']",
  'no activity deadline': "status = 'running', status_source = 'agent', inactive_at = null, last_activity_at = now() - interval '1 hour'",
  'long silent activity': "status = 'running', status_source = 'agent', inactive_at = null, last_activity_at = now() - interval '1 day'",
  'declared interval': "status = 'running', status_source = 'agent', heartbeat_interval_s = 10",
  'operator timeouts': "status = 'running', status_source = 'agent', operator_heartbeat_timeout_s = 40, operator_activity_timeout_s = 600",
  // health: the column's default nobody reported, and one an agent reported a minute ago
  'health never reported': "status = 'running', status_source = 'agent', health = 0, health_reported_at = null",
  'health reported': "status = 'running', status_source = 'agent', health_reported_at = now() - interval '1 minute'",
  // with an operator's command waiting for the heartbeat's answer (COMMANDS)
  'stop waiting': "status = 'running', status_source = 'agent'",
  'restart delivered': "status = 'running', status_source = 'agent'",
};
// The heartbeat's answer delivers these (agent_state_json's desired), on both paths alike.
const COMMANDS: Record<string, { action: string; status: string }> = {
  'stop waiting': { action: 'stop', status: 'pending' },
  'restart delivered': { action: 'restart', status: 'claimed' },
};
const SHAPES: Record<string, Record<string, unknown>> = {
  bare: {},
  'same health': { health: 50 },
  'new health': { health: 60 },
  // the default's value said out loud: steady on an agent at 0, and still a report
  'zero health': { health: 0 },
  activity: { last_activity: 'crawling page 3' },
  running: { status: 'running' },
  warning: { status: 'warning' },
  error: { status: 'error' },
  pid: { pid: 4321 },
  'same interval': { heartbeat_interval_s: 10 },
  'new interval': { heartbeat_interval_s: 20 },
  'running with everything': { status: 'running', health: 50, pid: 99, last_activity: 'idle', heartbeat_interval_s: 10 },
};

describe('steady heartbeats, applied set-based', () => {
  it('leave the same row, answer and history as apply_event, for every state and heartbeat shape', async () => {
    const cases = Object.keys(STATES).flatMap((state) => Object.keys(SHAPES).map((shape) => ({ state, shape })));
    const twins = cases.map((_, i) => ({ fast: `eq-${i}-fast`, slow: `eq-${i}-slow` }));
    const tokensOf: Record<string, string> = {};
    for (const { fast, slow } of twins) {
      for (const name of [fast, slow]) tokensOf[name] = await createToken(db.sql, 'agent', { agent: name });
    }
    // one transaction, so both twins' times are the same now()
    await db.sql.begin(async (tx) => {
      for (const [i, { state }] of cases.entries()) {
        const pair = [twins[i].fast, twins[i].slow];
        await tx.unsafe(
          `update public.agent_status set health = 50, last_heartbeat = now() - interval '10 seconds',
             started_at = now() - interval '1 hour', status_changed_at = now() - interval '1 hour', pid = 1234,
             stale_at = now() + interval '1 hour', inactive_at = now() + interval '1 hour',
             last_activity = 'before', last_activity_at = now() - interval '5 minutes', created_at = now()
           where agent_name in ($1, $2)`,
          pair,
        );
        await tx.unsafe(`update public.agent_status set ${STATES[state]} where agent_name in ($1, $2)`, pair);
        const command = COMMANDS[state];
        if (command) {
          // (a new command is pending whatever the insert says; delivered ones are claimed afterwards)
          await tx`
            insert into public.agent_commands (agent_id, action, via_heartbeat, requested_by)
            select id, ${command.action}, true, 'test' from public.agent_status where agent_name in ${tx(pair)}`;
          await tx`
            update public.agent_commands set status = ${command.status}, claimed_at = case when ${command.status} = 'claimed' then now() end
            where agent_id in (select id from public.agent_status where agent_name in ${tx(pair)})`;
        }
      }
    });
    const { fastAnswers, slowAnswers, applyEventCalls } = await db.sql.begin(async (tx) => {
      await tx`set local track_functions = 'pl'`;
      const items = cases.map(({ shape }, i) => ({ token: tokensOf[twins[i].fast], agent_name: twins[i].fast, ...SHAPES[shape] }));
      const fast: unknown[] = [];
      for (let at = 0; at < items.length; at += 50) {
        const [{ answers }] = await tx`select public.agent_heartbeat_batch(${tx.json(items.slice(at, at + 50) as never)}) as answers`;
        fast.push(...answers);
      }
      const [{ calls }] = await tx`
        select coalesce(sum(calls), 0)::int as calls from pg_stat_xact_user_functions where funcname = 'apply_event'`;
      const slow: unknown[] = [];
      for (const [i, { shape }] of cases.entries()) {
        const h = SHAPES[shape] as Record<string, never>;
        const [row] = await tx`
          select agent_private.agent_state_json(a) as agent
          from public.agent_heartbeat(${tokensOf[twins[i].slow]}, ${twins[i].slow}, ${h.status ?? null}, ${h.health ?? null},
                                      ${h.last_activity ?? null}, ${h.pid ?? null}, ${h.heartbeat_interval_s ?? null}) a`;
        slow.push({ agent: row.agent });
      }
      return { fastAnswers: fast, slowAnswers: slow, applyEventCalls: calls as number };
    });
    const strip = (value: unknown) =>
      JSON.parse(
        JSON.stringify(value)
          .replaceAll(/eq-\d+-(fast|slow)/g, 'twin')
          .replaceAll(/"command_id":\d+/g, '"command_id":0'),
      );
    const rows = await db.sql`
      select agent_name, to_jsonb(a) - 'id' - 'agent_name' as row,
             (select coalesce(jsonb_agg(jsonb_build_array(e.kind, e.from_status, e.to_status, e.health, e.message, e.at) order by e.id), '[]')
              from public.agent_events e where e.agent_id = a.id) as events,
             (select coalesce(jsonb_agg(jsonb_build_array(c.action, c.status, c.claimed_at, c.finished_at) order by c.id), '[]')
              from public.agent_commands c where c.agent_id = a.id) as commands
      from public.agent_status a where agent_name like 'eq-%'`;
    const byName = new Map(rows.map((r) => [r.agent_name as string, r]));
    for (const [i, { state, shape }] of cases.entries()) {
      const what = `${shape} heartbeat on ${state}`;
      expect(strip(fastAnswers[i]), what).toEqual(strip(slowAnswers[i]));
      expect(byName.get(twins[i].fast)!.row, what).toEqual(byName.get(twins[i].slow)!.row);
      expect(byName.get(twins[i].fast)!.events, what).toEqual(byName.get(twins[i].slow)!.events);
      expect(byName.get(twins[i].fast)!.commands, what).toEqual(byName.get(twins[i].slow)!.commands);
      if (COMMANDS[state]) expect(fastAnswers[i], what).toMatchObject({ agent: { desired: { action: COMMANDS[state].action } } });
    }
    // the rows compared above carry whether health was reported; a heartbeat with a health (even the
    // default's 0, which the set-based path takes as steady) records it, one without keeps what was
    const reportedAt = (state: string, shape: string) =>
      byName.get(twins[cases.findIndex((c) => c.state === state && c.shape === shape)].fast)!.row.health_reported_at;
    expect(reportedAt('health never reported', 'zero health')).not.toBeNull();
    expect(reportedAt('health never reported', 'bare')).toBeNull();
    expect(reportedAt('health never reported', 'activity')).toBeNull();
    expect(reportedAt('running', 'same health')).not.toBeNull();
    expect(Date.parse(reportedAt('health reported', 'bare'))).toBeLessThan(Date.parse(reportedAt('health reported', 'same health')));
    // the set-based path did serve the steady ones: apply_event ran only for the others
    const steady = cases.filter(
      ({ state, shape }) =>
        ([
          'running',
          'warning',
          'old restarts',
          'no activity deadline',
          'long silent activity',
          'declared interval',
          'operator timeouts',
          'health reported',
          'stop waiting',
          'restart delivered',
        ].includes(state) &&
          ['bare', 'same health', 'activity', 'pid'].includes(shape)) ||
        (state === 'health never reported' && ['bare', 'zero health', 'activity', 'pid'].includes(shape)),
    ).length;
    expect(applyEventCalls).toBeLessThanOrEqual(cases.length - steady);
  });
});
