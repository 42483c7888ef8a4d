// pg_cron really runs the sweep. This is the one slow test (about a minute: pg_cron 1.4 schedules by
// the minute). pg_cron lives in the cluster's `postgres` database, so this file migrates that one.
import { describe, expect, it, inject, beforeAll, afterAll } from 'vitest';
import postgres, { type Sql } from 'postgres';
import { applyMigrations } from '../../runner/local-stack/migrate.ts';
import { useTestDatabase } from '../helpers/database.ts';

describe('pg_cron', () => {
  const config = inject('postgres');
  let sql: Sql;
  const clone = useTestDatabase();

  beforeAll(async () => {
    sql = postgres(config.adminUrl, { max: 2, onnotice: () => {} });
    await applyMigrations(sql);
  });
  afterAll(async () => {
    await sql?.end();
  });

  it('the migration schedules the sweep every minute, once, however often it runs', async () => {
    const jobs = await sql`select jobname, schedule, command, active from cron.job where jobname = 'agent-status-sweep'`;
    expect(jobs).toEqual([
      { jobname: 'agent-status-sweep', schedule: '* * * * *', command: 'select public.agent_status_sweep()', active: true },
    ]);
    await sql.file(new URL('../../supabase/migrations/20261124000500_agent_status_cron.sql', import.meta.url).pathname);
    expect(await sql`select 1 from cron.job where jobname = 'agent-status-sweep'`).toHaveLength(1);
  });

  it('where pg_cron cannot be used, the migration is a no-op, not an error', async () => {
    // the per-file databases are clones of a template that is not cron.database_name
    expect(await clone.sql`select 1 from pg_extension where extname = 'pg_cron'`).toHaveLength(0);
    expect(await clone.sql`select 1 from supabase_migrations.schema_migrations where name = 'agent_status_cron'`).toHaveLength(1);
  });

  it("prunes only this project's cron history, never other applications' jobs", async () => {
    await sql`select cron.schedule('another-application', '0 0 1 1 *', 'select 1')`;
    try {
      await sql`insert into cron.job_run_details (jobid, runid, database, username, command, status, start_time, end_time)
                select jobid, case jobname when 'another-application' then -2 else -3 end, 'postgres', 'postgres', 'old run',
                       'succeeded', now() - interval '3 days', now() - interval '3 days'
                from cron.job where jobname in ('another-application', 'agent-status-sweep')`;
      const [{ summary }] = await sql`select public.agent_status_sweep() as summary`;
      expect(summary.cron_runs_pruned).toBeGreaterThanOrEqual(1);
      const left = await sql`select runid from cron.job_run_details where runid in (-2, -3)`;
      expect(left.map((r) => Number(r.runid))).toEqual([-2]);
    } finally {
      await sql`delete from cron.job_run_details where runid = -2`;
      await sql`select cron.unschedule('another-application')`;
    }
  });

  it('really runs the sweep: a silent agent is persisted stale by the job, and old run history is pruned', {
    timeout: 150_000,
  }, async () => {
    await sql`insert into cron.job_run_details (jobid, runid, database, username, command, status, start_time, end_time)
              select jobid, -1, 'postgres', 'postgres', 'old run', 'succeeded', now() - interval '3 days', now() - interval '3 days'
              from cron.job where jobname = 'agent-status-sweep'`;
    await sql`insert into public.agent_status (agent_name, status, status_source, last_heartbeat, stale_at)
              values ('cron-silent', 'running', 'agent', now() - interval '5 minutes', now() - interval '3 minutes')`;
    const deadline = Date.now() + 140_000;
    let status = 'running';
    while (status !== 'stale' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      [{ status }] = await sql`select status from public.agent_status where agent_name = 'cron-silent'`;
    }
    expect(status, 'pg_cron did not run the sweep within 140 s').toBe('stale');
    const [event] = await sql`select e.source, e.kind from public.agent_events e join public.agent_status a on a.id = e.agent_id
                              where a.agent_name = 'cron-silent'`;
    expect(event).toEqual({ source: 'sweep', kind: 'deadline' });
    const runs = await sql`select status, runid from cron.job_run_details d join cron.job j using (jobid)
                           where j.jobname = 'agent-status-sweep' order by runid`;
    expect(runs.map((r) => r.runid)).not.toContain(-1);
    expect(runs.some((r) => r.status === 'succeeded')).toBe(true);
  });
});
