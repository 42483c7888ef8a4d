// Issue 19 in SQL: one restart per crash whoever reports the start, a crash loop only from the third
// crash in 10 minutes, a warning's reason kept and counted once per episode or new message, no
// uptime for a silent agent, and no restart promised by a runner that has gone quiet. The runner and
// SDK tests (tests/runner/restarts.test.ts) drive the same rules with real processes.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { createToken, eventsOf, liveRow, registerRunner, setAgentState } from '../helpers/agents.ts';

describe('truth, second pass, in the database', () => {
  const db = useTestDatabase();

  it("one restart per crash, whether the runner's start or the agent's own (through the runner's token) comes first", async () => {
    const runner = await registerRunner(db.sql, 'double-host', ['double']);
    const report = (event: string, pid: number | null = null) =>
      db.sql`select public.agent_report(${runner}, 'double', ${event}, p_pid => ${pid},
               p_details => ${event === 'crashed' ? db.sql.json({ restart_in_s: 0 }) : null})`;
    await report('started', 10);
    await report('started', 10);
    // crash 1: the runner's start first, then the SDK's from inside the new process
    await report('crashed');
    await report('started', 11);
    await report('started', 11);
    expect(await liveRow(db.sql, 'double')).toMatchObject({ restarts_total: 1, restarts_10m: 1, status: 'warning' });
    expect((await liveRow(db.sql, 'double')).status_reason).toMatch(/^restart 1 in 10 min \(1 in all\)/);
    // crash 2: the SDK's start may be the first to arrive
    await report('crashed');
    await report('started', 12);
    await report('started', 12);
    // an adoption of the process already restarted is no restart either
    await report('adopted', 12);
    expect(await liveRow(db.sql, 'double')).toMatchObject({ restarts_total: 2, restarts_10m: 2 });
  });

  it('a crash loop is three crashes in 10 minutes not yet stable: the row, the history and the alert flip agree', async () => {
    const runner = await registerRunner(db.sql, 'loop-host-2', ['looping']);
    const report = (event: string) =>
      db.sql`select public.agent_report(${runner}, 'looping', ${event}, p_exit_code => ${event === 'crashed' ? 1 : null},
               p_details => ${event === 'crashed' ? db.sql.json({ restart_in_s: 1 }) : null})`;
    await report('started');
    const seen: boolean[] = [];
    for (let crash = 1; crash <= 3; crash++) {
      await report('crashed');
      seen.push((await liveRow(db.sql, 'looping')).crash_looping);
      await report('started');
    }
    expect(seen).toEqual([false, false, true]);
    expect(await liveRow(db.sql, 'looping')).toMatchObject({ crashes_10m: 3, crash_looping: true });
    const crashes = (await eventsOf(db.sql, 'looping')).filter((e) => e.kind === 'crashed');
    expect(crashes.map((e) => e.details.crash_loop ?? false)).toEqual([false, false, true]);
    // stable ends it; the crashes stay counted for 10 minutes but are no loop
    await report('stable');
    expect(await liveRow(db.sql, 'looping')).toMatchObject({ crashes_10m: 3, crash_looping: false, status: 'running' });
  });

  it('a warning repeated without a message keeps its reason and is counted once; a new message counts again', async () => {
    await setAgentState(db.sql, 'drifting', 'running');
    const token = await createToken(db.sql, 'agent', { agent: 'drifting' });
    await db.sql`select public.agent_report(${token}, 'drifting', 'warning', p_message => 'queue backing up', p_health => 55)`;
    // the SDK's plain status reports while it stays in warning, with its health wandering
    for (const health of [52, 48, 50, 47]) {
      await db.sql`select public.agent_heartbeat(${token}, 'drifting', 'warning', ${health})`;
    }
    await db.sql`select public.agent_report(${token}, 'drifting', 'warning', p_message => 'queue backing up', p_health => 45)`;
    let live = await liveRow(db.sql, 'drifting');
    expect(live).toMatchObject({ status: 'warning', status_reason: 'queue backing up', warnings_1h: 1, health: 45 });
    // the health chart still gets its points
    expect((await eventsOf(db.sql, 'drifting')).filter((e) => e.kind === 'warning')).toHaveLength(6);
    await db.sql`select public.agent_report(${token}, 'drifting', 'warning', p_message => 'disk 95 % full')`;
    live = await liveRow(db.sql, 'drifting');
    expect(live).toMatchObject({ status_reason: 'disk 95 % full', warnings_1h: 2 });
    // a new episode after it recovered counts again
    await db.sql`select public.agent_heartbeat(${token}, 'drifting', 'running')`;
    await db.sql`select public.agent_report(${token}, 'drifting', 'warning', p_message => 'disk 95 % full')`;
    expect(await liveRow(db.sql, 'drifting')).toMatchObject({ warnings_1h: 3 });
  });

  it('a silent agent is not up: stale (read or swept) has no uptime', async () => {
    await setAgentState(db.sql, 'killed', 'running');
    expect((await liveRow(db.sql, 'killed')).uptime_s).toBeGreaterThan(3000);
    await db.sql`update public.agent_status set stale_at = now() - interval '1 second' where agent_name = 'killed'`;
    expect(await liveRow(db.sql, 'killed')).toMatchObject({ status: 'stale', uptime_s: null });
    await db.sql`select public.agent_status_sweep()`;
    expect(await liveRow(db.sql, 'killed')).toMatchObject({ status: 'stale', recorded_status: 'stale', uptime_s: null });
  });

  it('a crash waiting for its restart says the runner has gone quiet instead of repeating its plan', async () => {
    const runner = await registerRunner(db.sql, 'quiet-host', ['waiting']);
    await db.sql`select public.runner_heartbeat(${runner}, null, 5)`;
    await db.sql`select public.agent_report(${runner}, 'waiting', 'started')`;
    await db.sql`select public.agent_report(${runner}, 'waiting', 'crashed', p_message => 'exited with code 1 after 3 s',
                   p_details => ${db.sql.json({ restart_in_s: 60 })})`;
    let live = await liveRow(db.sql, 'waiting');
    expect(live.status_reason).toBe('exited with code 1 after 3 s; restarting in 60 s (restart 1 in 10 min)');
    expect(live.next_restart_at).not.toBeNull();
    await db.sql`update public.runners set last_seen_at = now() - interval '11 seconds' where host = 'quiet-host'`;
    live = await liveRow(db.sql, 'waiting');
    expect(live.next_restart_at).toBeNull();
    expect(live.status_reason).toMatch(
      /^exited with code 1 after 3 s; it was to be restarted, but its runner on quiet-host is silent \(no word for 1\d s\)$/,
    );
  });
});
