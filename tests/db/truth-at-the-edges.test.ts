// Issue 11 in SQL: crash loops counted and folded, runners silent at read time, warnings and errors
// kept after recovery, timeouts from the declared interval or an operator, and event times clamped.
// The runner, SDK and CLI tests drive the same functions from the user's side.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { agentRow, createToken, eventsOf, failure, liveRow, registerRunner, setAgentState } from '../helpers/agents.ts';

describe('truth at the edges, in the database', () => {
  const db = useTestDatabase();

  it('a crash loop never reads running, counts its restarts and keeps its history bounded', { timeout: 120_000 }, async () => {
    const runner = await registerRunner(db.sql, 'loop-host', ['looper']);
    const report = (event: string, extra: { message?: string; exitCode?: number; restartIn?: number } = {}) =>
      db.sql`select public.agent_report(${runner}, 'looper', ${event}, p_message => ${extra.message ?? null},
               p_exit_code => ${extra.exitCode ?? null}, p_pid => ${event === 'started' ? 4242 : null},
               p_details => ${extra.restartIn === undefined ? null : db.sql.json({ restart_in_s: extra.restartIn })})`;
    await report('started');
    expect((await liveRow(db.sql, 'looper')).status).toBe('running');
    for (let cycle = 1; cycle <= 5; cycle++) {
      await report('crashed', { message: 'exited with code 1 after 2.0 s\nlast stderr:\nfatal', exitCode: 1, restartIn: 2 ** cycle });
      const crashed = await liveRow(db.sql, 'looper');
      expect(crashed.status).toBe('error');
      expect(crashed.status_reason).toBe(`exited with code 1 after 2.0 s; restarting in ${2 ** cycle} s (restart ${cycle} in 10 min)`);
      expect(crashed.next_restart_at).not.toBeNull();
      await report('started');
      const again = await liveRow(db.sql, 'looper');
      expect(again.status, `restart ${cycle} reads warning, not running`).toBe('warning');
      // a loop from the third crash in 10 minutes (issue 19): one crash is not a pattern
      expect(again).toMatchObject({ restarts_total: cycle, restarts_10m: cycle, crash_looping: cycle >= 3, next_restart_at: null });
      expect(again.status_reason).toMatch(new RegExp(`^restart ${cycle} in 10 min`));
    }
    // the agent's own "started" from inside the restarted process is not one more restart
    const agentToken = await createToken(db.sql, 'agent', { agent: 'looper' });
    await db.sql`select public.agent_report(${agentToken}, 'looper', 'started')`;
    expect(await liveRow(db.sql, 'looper')).toMatchObject({ status: 'warning', restarts_total: 5 });
    const events = await eventsOf(db.sql, 'looper');
    // started, crashed, started, crashed, started, crashed (crash_loop, counting the other two)
    expect(events.map((e) => e.kind)).toEqual(['started', 'crashed', 'started', 'crashed', 'started', 'crashed']);
    expect(events[5].details).toMatchObject({ crash_loop: true, repeats: 2, exit_code: 1, restarts_total: 4 });
    const live = await liveRow(db.sql, 'looper');
    expect(live.errors_1h).toBe(5);
    expect(live).toMatchObject({ last_error: 'exited with code 1 after 2.0 s\nlast stderr:\nfatal', health: 50 });

    // a different crash is told, not folded
    await report('crashed', { message: 'killed by SIGSEGV', exitCode: 139, restartIn: 60 });
    expect((await eventsOf(db.sql, 'looper')).map((e) => e.kind)).toHaveLength(7);

    // stable: the runner saw it stay up; the loop is over
    await report('started');
    await report('stable');
    const stable = await liveRow(db.sql, 'looper');
    expect(stable).toMatchObject({ status: 'running', health: 100, crash_looping: false, restarts_total: 6 });
  });

  it('an error keeps neither its health nor its uptime after the process ended', async () => {
    await setAgentState(db.sql, 'fails', 'running');
    await db.sql`update public.agent_status set health = 95 where agent_name = 'fails'`;
    const token = await createToken(db.sql, 'agent', { agent: 'fails' });
    await db.sql`select public.agent_report(${token}, 'fails', 'error', p_message => 'database gone')`;
    expect(await liveRow(db.sql, 'fails')).toMatchObject({ status: 'error', health: 0, last_error: 'database gone' });
    expect((await liveRow(db.sql, 'fails')).uptime_s).toBeGreaterThan(0);
    await db.sql`select public.agent_report(${token}, 'fails', 'stopped', p_exit_code => 1)`;
    const down = await liveRow(db.sql, 'fails');
    expect(down).toMatchObject({ status: 'error', exit_code: 1, uptime_s: null });
    expect(down.down_s).toBeGreaterThanOrEqual(0);
  });

  it('a warning stays attached, with its time, after the agent recovers; counts per hour and day', async () => {
    await setAgentState(db.sql, 'flaky', 'running');
    const token = await createToken(db.sql, 'agent', { agent: 'flaky' });
    await db.sql`select public.agent_report(${token}, 'flaky', 'warning', p_message => 'rate limited')`;
    await db.sql`select public.agent_report(${token}, 'flaky', 'running')`;
    await db.sql`select public.agent_report(${token}, 'flaky', 'warning', p_message => 'rate limited again')`;
    await db.sql`select public.agent_heartbeat(${token}, 'flaky', 'running')`;
    const live = await liveRow(db.sql, 'flaky');
    expect(live).toMatchObject({ status: 'running', last_warning: 'rate limited again', warnings_1h: 2, warnings_24h: 2, errors_24h: 0 });
    expect(live.last_warning_at).toBeInstanceOf(Date);
  });

  it('a runner reads silent after two of its intervals, and its agents say so', async () => {
    const token = await registerRunner(db.sql, 'dying-host', ['orphan']);
    await db.sql`select public.agent_report(${token}, 'orphan', 'started', p_pid => 77)`;
    await db.sql`select public.runner_heartbeat(${token}, null, 5)`;
    expect(await liveRow(db.sql, 'orphan')).toMatchObject({ runner_online: true, runner_status: 'online', runner_silent_s: null });
    await db.sql`update public.runners set last_seen_at = now() - interval '11 seconds' where host = 'dying-host'`;
    const [runner] = await db.sql`select * from public.runner_status_live where host = 'dying-host'`;
    expect(runner).toMatchObject({ status: 'silent', recorded_status: 'online', silent_after_s: 10 });
    expect(runner.silent_s).toBeGreaterThanOrEqual(11);
    const orphan = await liveRow(db.sql, 'orphan');
    expect(orphan).toMatchObject({ status: 'running', runner_online: false, runner_status: 'silent' });
    expect(orphan.status_reason).toMatch(/^its runner on dying-host is silent \(no word for 1\d s\)$/);
    const swept = (await db.sql`select public.agent_status_sweep() as r`)[0].r;
    expect(swept.runners_offline).toBe(1);
    const [event] = await db.sql`select * from public.agent_events where kind = 'runner_offline' and source = 'sweep'`;
    expect(event.details.silent_s).toBeGreaterThanOrEqual(11);
  });

  it('the heartbeat timeout derives from the declared interval unless an operator sets it', async () => {
    await setAgentState(db.sql, 'fast', 'stopped');
    const token = await createToken(db.sql, 'agent', { agent: 'fast' });
    await db.sql`select public.agent_heartbeat(${token}, 'fast', p_heartbeat_interval_s => 5)`;
    let live = await liveRow(db.sql, 'fast');
    expect(live).toMatchObject({ heartbeat_interval_s: 5, heartbeat_timeout_s: 13, heartbeat_timeout_source: 'interval' });
    expect(live.stale_at.getTime() - live.last_heartbeat.getTime()).toBe(13_000);

    await db.sql`select public.set_agent_timeouts('fast', 60, 600)`;
    live = await liveRow(db.sql, 'fast');
    expect(live).toMatchObject({ heartbeat_timeout_s: 60, heartbeat_timeout_source: 'operator', activity_timeout_s: 600 });
    expect(live.stale_at.getTime() - live.last_heartbeat.getTime()).toBe(60_000);
    const [event] = (await eventsOf(db.sql, 'fast')).filter((e) => e.kind === 'timeouts_set');
    expect(event).toMatchObject({ source: 'operator', actor: 'service', message: 'heartbeat timeout 60 s, activity timeout 600 s' });

    await db.sql`select public.set_agent_timeouts('fast', 0)`;
    expect(await liveRow(db.sql, 'fast')).toMatchObject({ heartbeat_timeout_s: 13, activity_timeout_s: 600 });
    expect(await failure(db.sql`select public.set_agent_timeouts('fast', 2)`)).toMatchObject({ code: '22023' });
    expect(await failure(db.sql`select public.set_agent_timeouts('nobody', 30)`)).toMatchObject({ code: 'P0002' });
  });

  it('records when a buffered report was made, never in the future nor before the previous event', async () => {
    await setAgentState(db.sql, 'buffered', 'running');
    const token = await createToken(db.sql, 'agent', { agent: 'buffered' });
    const made = new Date(Date.now() - 47_000);
    await db.sql`select public.agent_report(${token}, 'buffered', 'warning', p_message => 'queued', p_at => ${made})`;
    let [event] = (await eventsOf(db.sql, 'buffered')).slice(-1);
    expect(event.at.getTime()).toBe(made.getTime());
    expect((await agentRow(db.sql, 'buffered')).last_warning_at.getTime()).toBe(made.getTime());
    // before the previous event: clamped to it
    await db.sql`select public.agent_report(${token}, 'buffered', 'error', p_message => 'older', p_at => ${new Date(made.getTime() - 60_000)})`;
    [event] = (await eventsOf(db.sql, 'buffered')).slice(-1);
    expect(event.at.getTime()).toBe(made.getTime());
    // in the future: now
    await db.sql`select public.agent_report(${token}, 'buffered', 'running', p_at => ${new Date(Date.now() + 3_600_000)})`;
    [event] = (await eventsOf(db.sql, 'buffered')).slice(-1);
    expect(event.at.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
  });
});
