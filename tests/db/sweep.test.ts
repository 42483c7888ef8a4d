// Staleness at read time, and the sweep that persists it, expires commands, marks runners offline
// and prunes history: idempotent, touching only rows that change, never twice at once.
import { describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { useTestDatabase } from '../helpers/database.ts';
import { agentRow, createToken, eventsOf, liveRow, registerRunner, setAgentState } from '../helpers/agents.ts';

describe('staleness and the sweep', () => {
  const db = useTestDatabase();
  const sweep = async () => (await db.sql`select public.agent_status_sweep() as r`)[0].r;

  it('a silent agent reads stale the moment its deadline passes, before any sweep', async () => {
    await setAgentState(db.sql, 'quiet', 'running');
    await db.sql`update public.agent_status set stale_at = now() - interval '1 millisecond',
                   last_heartbeat = now() - interval '121 seconds' where agent_name = 'quiet'`;
    const live = await liveRow(db.sql, 'quiet');
    expect(live).toMatchObject({ status: 'stale', recorded_status: 'running', status_source: 'sweep' });
    expect(live.status_reason).toMatch(/^no heartbeat for 12\d s$/);
    expect((await agentRow(db.sql, 'quiet')).status).toBe('running');
  });

  it('the sweep persists it with an event, once: a second run changes nothing', async () => {
    const first = await sweep();
    expect(first.stale).toBeGreaterThanOrEqual(1);
    const row = await agentRow(db.sql, 'quiet');
    expect(row).toMatchObject({ status: 'stale', status_source: 'sweep', stale_at: null });
    const flips = (await eventsOf(db.sql, 'quiet')).filter((e) => e.kind === 'deadline');
    expect(flips).toHaveLength(1);
    expect(flips[0]).toMatchObject({ source: 'sweep', from_status: 'running', to_status: 'stale' });
    const [{ xmin: before }] = await db.sql`select xmin::text from public.agent_status where agent_name = 'quiet'`;
    const second = await sweep();
    expect(second).toMatchObject({ skipped: false, stale: 0, inactive: 0, commands_expired: 0, runners_offline: 0 });
    const [{ xmin: after }] = await db.sql`select xmin::text from public.agent_status where agent_name = 'quiet'`;
    expect(after, 'an unchanged row is not rewritten').toBe(before);
    expect((await eventsOf(db.sql, 'quiet')).filter((e) => e.kind === 'deadline')).toHaveLength(1);
  });

  it('an agent that heartbeated a millisecond before its deadline is not stale', async () => {
    await setAgentState(db.sql, 'just-in-time', 'running');
    const token = await createToken(db.sql, 'agent', { agent: 'just-in-time' });
    await db.sql`update public.agent_status set stale_at = clock_timestamp() + interval '1 millisecond' where agent_name = 'just-in-time'`;
    await db.sql`select public.agent_heartbeat(${token}, 'just-in-time')`;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await sweep();
    const row = await agentRow(db.sql, 'just-in-time');
    expect(row.status).toBe('running');
    expect(row.stale_at.getTime()).toBeGreaterThan(Date.now() + 100_000);
    expect((await eventsOf(db.sql, 'just-in-time')).filter((e) => e.kind === 'deadline')).toHaveLength(0);
  });

  it('heartbeats that change nothing, even ones repeating the status, write no history', async () => {
    await setAgentState(db.sql, 'steady', 'stopped');
    const token = await createToken(db.sql, 'agent', { agent: 'steady' });
    await db.sql`select public.agent_heartbeat(${token}, 'steady', 'warning', 70)`;
    const after = (await eventsOf(db.sql, 'steady')).length;
    for (let i = 0; i < 5; i++) {
      await db.sql`select public.agent_heartbeat(${token}, 'steady', 'warning', 70)`;
      await db.sql`select public.agent_heartbeat(${token}, 'steady')`;
    }
    expect(await eventsOf(db.sql, 'steady')).toHaveLength(after);
    // while a change of health, or a warning with its message, is history
    await db.sql`select public.agent_heartbeat(${token}, 'steady', 'warning', 60)`;
    await db.sql`select public.agent_report(${token}, 'steady', 'warning', 'queue backing up', 60)`;
    expect((await eventsOf(db.sql, 'steady')).map((e) => e.kind).slice(after)).toEqual(['warning', 'warning']);
  });

  it('the heartbeat timeout is per agent, with a default', async () => {
    await setAgentState(db.sql, 'slow-beat', 'stopped');
    const token = await createToken(db.sql, 'agent', { agent: 'slow-beat' });
    await db.sql`select public.agent_heartbeat(${token}, 'slow-beat')`;
    let row = await agentRow(db.sql, 'slow-beat');
    expect((row.stale_at - row.last_heartbeat) / 1000).toBe(120);
    await db.sql`update public.agent_status set heartbeat_timeout_s = 600 where agent_name = 'slow-beat'`;
    await db.sql`select public.agent_heartbeat(${token}, 'slow-beat')`;
    row = await agentRow(db.sql, 'slow-beat');
    expect((row.stale_at - row.last_heartbeat) / 1000).toBe(600);
  });

  it('an agent that heartbeats but reports no activity turns warning: alive but possibly hung', async () => {
    await setAgentState(db.sql, 'busy-looking', 'stopped');
    const token = await createToken(db.sql, 'agent', { agent: 'busy-looking' });
    await db.sql`select public.agent_report(${token}, 'busy-looking', 'started')`;
    const started = await agentRow(db.sql, 'busy-looking');
    expect((started.inactive_at - started.started_at) / 1000).toBe(900); // 15 minutes by default
    await db.sql`update public.agent_status set inactive_at = now() - interval '1 second' where agent_name = 'busy-looking'`;
    expect((await sweep()).inactive).toBe(1);
    let row = await agentRow(db.sql, 'busy-looking');
    expect(row).toMatchObject({ status: 'warning', status_source: 'sweep', inactive_at: null });
    expect(row.status_reason).toMatch(/no activity reported since it started: alive but possibly hung/);
    // heartbeats alone do not clear it; activity does
    await db.sql`select public.agent_heartbeat(${token}, 'busy-looking')`;
    expect((await agentRow(db.sql, 'busy-looking')).status).toBe('warning');
    await db.sql`select public.agent_heartbeat(${token}, 'busy-looking', p_activity => 'page 2')`;
    row = await agentRow(db.sql, 'busy-looking');
    expect(row).toMatchObject({ status: 'running', last_activity: 'page 2' });
    expect(row.inactive_at).not.toBeNull();
    // an agent may opt out
    await db.sql`update public.agent_status set activity_timeout_s = null where agent_name = 'busy-looking'`;
    await db.sql`update public.agent_status_settings set default_activity_timeout_s = null`;
    await db.sql`select public.agent_heartbeat(${token}, 'busy-looking', p_activity => 'page 3')`;
    expect((await agentRow(db.sql, 'busy-looking')).inactive_at).toBeNull();
    await db.sql`update public.agent_status_settings set default_activity_timeout_s = 900`;
  });

  it('expires commands that waited too long and fails claims nobody finished', async () => {
    await setAgentState(db.sql, 'commanded', 'stopped');
    const runner = await registerRunner(db.sql, 'sweep-host', ['commanded']);
    const [late] = await db.sql`select * from public.enqueue_agent_commands('start', 'commanded')`;
    await db.sql`update public.agent_commands set expires_at = now() - interval '1 second' where id = ${late.id}`;
    const [stuck] = await db.sql`select * from public.enqueue_agent_commands('stop', 'commanded')`;
    const [claimed] = await db.sql`select * from public.runner_claim_commands(${runner})`;
    expect(claimed.id).toBe(stuck.id); // the expired one is never handed out
    await db.sql`update public.agent_commands set claimed_at = now() - interval '1 hour' where id = ${stuck.id}`;
    const result = await sweep();
    expect(result).toMatchObject({ commands_expired: 1, commands_abandoned: 1 });
    const rows = await db.sql`select id, status, result from public.agent_commands where id in (${late.id}, ${stuck.id}) order by id`;
    expect(rows[0]).toMatchObject({ status: 'expired', result: 'no runner claimed it before it expired' });
    expect(rows[1].status).toBe('failed');
    expect(rows[1].result).toMatch(/did not report a result within 300 s/);
    const kinds = (await eventsOf(db.sql, 'commanded')).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['command_requested', 'command_claimed', 'command_expired', 'command_failed']));
  });

  it('marks silent runners offline, with an event, once', async () => {
    await registerRunner(db.sql, 'gone-host', []);
    await db.sql`update public.runners set last_seen_at = now() - interval '91 seconds' where host = 'gone-host'`;
    expect((await sweep()).runners_offline).toBe(1);
    expect((await db.sql`select status from public.runners where host = 'gone-host'`)[0].status).toBe('offline');
    expect((await sweep()).runners_offline).toBe(0);
    const events = await db.sql`select e.kind, e.source from public.agent_events e join public.runners r on r.id = e.runner_id
                                where r.host = 'gone-host' order by e.id`;
    expect(events.map((e) => `${e.kind}/${e.source}`)).toEqual(['runner_online/runner', 'runner_offline/sweep']);
  });

  it('prunes history past the retention period, in bounded batches', async () => {
    await setAgentState(db.sql, 'old-timer', 'running');
    const [{ id }] = await db.sql`select id from public.agent_status where agent_name = 'old-timer'`;
    await db.sql`insert into public.agent_events (agent_id, kind, source, at)
                 select ${id}, 'heartbeat', 'agent', now() - interval '40 days' from generate_series(1, 250)`;
    await db.sql`insert into public.agent_events (agent_id, kind, source, at) values (${id}, 'warning', 'agent', now() - interval '29 days')`;
    await db.sql`update public.agent_status_settings set prune_batch = 100`;
    expect((await sweep()).events_pruned).toBe(100);
    expect((await sweep()).events_pruned).toBe(100);
    expect((await sweep()).events_pruned).toBe(50);
    expect((await sweep()).events_pruned).toBe(0);
    const [{ n }] =
      await db.sql`select count(*)::int as n from public.agent_events where agent_id = ${id} and at < now() - interval '28 days'`;
    expect(n).toBe(1);
    await db.sql`update public.agent_status_settings set prune_batch = 10000`;
  });

  it('never runs twice at once: a concurrent call returns skipped instead of waiting', async () => {
    const other = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await db.sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(hashtext('agent_status_sweep'))`;
        const [{ r }] = await other`select public.agent_status_sweep() as r`;
        expect(r).toEqual({ skipped: true });
      });
    } finally {
      await other.end();
    }
  });
});
