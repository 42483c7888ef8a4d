-- The pg_cron jobs: the sweep every minute, and the alert dispatcher's wake every 10 s where pg_net
-- exists too. Both are guarded: where an extension is missing they do nothing and say so, and the local
-- stack runs the same functions on timers.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-- Schedules the sweep every minute where pg_cron exists (Supabase, or PostgreSQL with
-- postgresql-15-cron preloaded in this database). Elsewhere it does nothing and says so; the local
-- stack then runs the same function on a timer. pg_cron 1.4 has no sub-minute schedules.
do $$
begin
  if not exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    raise notice 'pg_cron is not available: schedule select public.agent_status_sweep() every minute yourself';
    return;
  end if;
  begin
    create extension if not exists pg_cron;
  exception when others then
    -- e.g. not in shared_preload_libraries, or this is not cron.database_name
    raise notice 'pg_cron cannot be used in this database (%): schedule public.agent_status_sweep() yourself', sqlerrm;
    return;
  end;
  -- scheduling by name replaces an earlier job of the same name, so re-running is harmless
  perform cron.schedule('agent-status-sweep', '* * * * *', 'select public.agent_status_sweep()');
end
$$;

-------------------------------------------------------------------------------------------------------
-- Schedule: pg_cron calls the dispatcher through pg_net every 10 s on Supabase (pg_cron 1.6 takes
-- second schedules). Where either extension is missing this does nothing and says so; the local
-- stack then calls the same function on a timer.
-------------------------------------------------------------------------------------------------------
do $$
begin
  if not exists (select 1 from pg_available_extensions where name = 'pg_net') then
    raise notice 'pg_net is not available: call the dispatch function on a timer yourself (npm start does)';
    return;
  end if;
  if not exists (select 1 from pg_extension where extname = 'pg_cron') then
    raise notice 'pg_cron is not installed: call the dispatch function on a timer yourself';
    return;
  end if;
  begin
    create extension if not exists pg_net;
    perform cron.schedule('agent-status-alerts', '10 seconds', 'select agent_private.alert_wake()');
  exception when others then
    raise notice 'the alert dispatch schedule was not created (%): call the dispatch function on a timer yourself', sqlerrm;
  end;
end
$$;
