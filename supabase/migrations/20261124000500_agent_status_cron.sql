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
