// Races the design must win: concurrent claims never hand one command out twice, and heartbeats
// racing the sweep leave a row and a history that agree.
import { describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { useTestDatabase } from '../helpers/database.ts';
import { agentRow, createToken, eventsOf, registerRunner, setAgentState } from '../helpers/agents.ts';

describe('concurrency', () => {
  const db = useTestDatabase();

  it('two runners claiming 200 pending commands at once claim each exactly once', async () => {
    const agents = Array.from({ length: 20 }, (_, i) => `claim-${i}`);
    for (const name of agents) await setAgentState(db.sql, name, 'stopped');
    const token = await registerRunner(db.sql, 'claim-host', agents);
    // a second runner process started by mistake on the same host holds the same host token
    for (let round = 0; round < 10; round++) {
      await db.sql`select * from public.enqueue_agent_commands('start', p_host => 'claim-host')`;
    }
    const [{ n }] = await db.sql`select count(*)::int as n from public.agent_commands where status = 'pending'`;
    expect(n).toBe(200);

    const runners = [postgres(db.url, { max: 4 }), postgres(db.url, { max: 4 })];
    try {
      const claimLoop = async (sql: postgres.Sql) => {
        const ids: number[] = [];
        for (let i = 0; i < 200; i++) {
          const batch = await sql`select id from public.runner_claim_commands(${token}, 7)`;
          if (batch.length === 0) break;
          ids.push(...batch.map((r) => Number(r.id)));
        }
        return ids;
      };
      // four loops on each of the two runners' connection pools, all at once
      const claimed = (
        await Promise.all(runners.flatMap((sql) => [claimLoop(sql), claimLoop(sql), claimLoop(sql), claimLoop(sql)]))
      ).flat();
      expect(claimed).toHaveLength(200);
      expect(new Set(claimed).size).toBe(200);
      const [{ pending, claimedRows, events }] = await db.sql`
        select count(*) filter (where status = 'pending')::int as pending,
               count(*) filter (where status = 'claimed')::int as "claimedRows",
               (select count(*)::int from public.agent_events where kind = 'command_claimed') as events
        from public.agent_commands`;
      expect({ pending, claimedRows, events }).toEqual({ pending: 0, claimedRows: 200, events: 200 });
    } finally {
      await Promise.all(runners.map((sql) => sql.end()));
    }
  });

  it('50 concurrent heartbeats and a sweep on the same agent leave a consistent row and history', async () => {
    await setAgentState(db.sql, 'contended', 'running');
    const token = await createToken(db.sql, 'agent', { agent: 'contended' });
    // overdue, so the sweep has something to race for
    await db.sql`update public.agent_status set stale_at = now() - interval '1 second', health = 100 where agent_name = 'contended'`;
    const pool = postgres(db.url, { max: 25, onnotice: () => {} });
    try {
      const heartbeats = Array.from(
        { length: 50 },
        (_, i) => pool`select public.agent_heartbeat(${token}, 'contended', p_health => ${50 + (i % 3)})`,
      );
      const sweeps = [pool`select public.agent_status_sweep()`, pool`select public.agent_status_sweep()`];
      await Promise.all([...heartbeats, ...sweeps]);
    } finally {
      await pool.end();
    }
    const row = await agentRow(db.sql, 'contended');
    const events = await eventsOf(db.sql, 'contended');
    // the history is one unbroken chain: every row starts where the previous one ended
    for (let i = 1; i < events.length; i++) expect(events[i].from_status).toBe(events[i - 1].to_status);
    expect(events.at(-1)!.to_status).toBe(row.status);
    expect(events.at(-1)!.health).toBe(row.health);
    // The sweep can only win before the first heartbeat (any heartbeat moves the deadline), so it
    // flipped the agent at most once, and the next heartbeat brought it back.
    const deadlines = events.filter((e) => e.kind === 'deadline');
    expect(deadlines.length).toBeLessThanOrEqual(1);
    if (deadlines.length === 1) {
      const i = events.indexOf(deadlines[0]);
      expect(events[i + 1]).toMatchObject({ kind: 'heartbeat', from_status: 'stale', to_status: 'running' });
    }
    expect(row.status).toBe('running');
    expect(row.stale_at.getTime()).toBeGreaterThan(Date.now() + 60_000);
  });
});
