-- Sending alerts: the dispatcher's claim and complete, its key, and waking it (pg_notify; pg_net where it exists).
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-- Where pg_net wakes the dispatcher on a Supabase project: the function URL and the key it sends.
-- The key may instead live in Supabase Vault under the name agent_status_dispatch_key.
create table agent_private.alert_dispatch_target (
  id boolean primary key default true check (id),
  url text not null check (url ~ '^https?://'),
  key text
);

-- Claims up to p_limit due deliveries in one statement (FOR UPDATE SKIP LOCKED: two dispatchers never
-- get the same row) and returns them with their channel, secrets included. A delivery waits while an
-- older one of the same subject on the same channel is still open, so notices arrive in order.
create function public.alert_claim(p_dispatcher text, p_limit integer default 20)
  returns table (id bigint, attempt integer, kind text, notice jsonb, channel_name text, channel_kind text,
                 endpoint text, secret text, settings jsonb, created_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  lease integer;
begin
  perform agent_private.require_service();
  if p_limit is null or p_limit < 1 or p_limit > 500 then
    perform agent_private.invalid(format('limit must be between 1 and 500, got %s', p_limit));
  end if;
  perform agent_private.alert_tick();
  select lease_s into lease from public.alert_settings;
  return query
  with due as (
    select d.id from public.alert_deliveries d
    where ((d.status = 'pending' and d.due_at <= now()) or (d.status = 'sending' and d.locked_until <= now()))
      and not exists (select 1 from public.alert_deliveries o
                      where o.channel_id = d.channel_id and o.subject = d.subject and o.id < d.id
                        and o.status in ('pending', 'sending'))
    order by d.due_at, d.id
    limit p_limit
    for update of d skip locked
  ), claimed as (
    update public.alert_deliveries d set status = 'sending', attempts = d.attempts + 1, locked_by = left(p_dispatcher, 200),
      locked_until = now() + make_interval(secs => lease)
    from due where d.id = due.id
    returning d.*
  )
  select cl.id, cl.attempts, cl.kind, cl.notice || jsonb_build_object('delivery_id', cl.id, 'channel', c.name),
         c.name, c.kind, c.endpoint, c.secret, c.settings, cl.created_at
  from claimed cl join public.alert_channels c on c.id = cl.channel_id
  order by cl.id;
end
$$;

-- Records one attempt and settles the delivery: delivered, retried later (exponential backoff with
-- jitter, so many failures do not come back at once), or dead once the retry window is over.
-- Compare-and-set on the attempt number: a dispatcher whose lease ran out cannot overwrite the next one's result.
create function public.alert_complete(
  p_id bigint, p_attempt integer, p_ok boolean, p_http_status integer default null, p_response text default null,
  p_error text default null, p_duration_ms integer default null, p_dispatcher text default null
) returns text
  language plpgsql security definer set search_path = ''
as $$
declare
  settings public.alert_settings;
  d public.alert_deliveries;
  next_status text;
begin
  perform agent_private.require_service();
  select * into settings from public.alert_settings;
  select * into d from public.alert_deliveries where id = p_id for update;
  if not found or d.status <> 'sending' or d.attempts <> p_attempt then
    return 'stale';
  end if;
  insert into public.alert_attempts (delivery_id, dispatcher, duration_ms, http_status, response, error, ok)
  values (p_id, left(p_dispatcher, 200), p_duration_ms, p_http_status, left(p_response, 500), left(p_error, 1000), p_ok);
  next_status := case when p_ok then 'delivered'
                      when now() >= d.created_at + make_interval(secs => settings.retry_window_s) then 'dead'
                      else 'pending' end;
  update public.alert_deliveries set status = next_status, locked_by = null, locked_until = null,
    last_http_status = p_http_status, last_error = case when p_ok then null else left(coalesce(p_error, 'failed'), 1000) end,
    finished_at = case when next_status = 'pending' then null else now() end,
    due_at = case when next_status = 'pending'
                  then now() + make_interval(secs => least(settings.backoff_max_s, settings.backoff_base_s * 2 ^ least(d.attempts - 1, 20))
                                                     * (0.5 + random() * 0.5))
                  else due_at end
  where id = p_id;
  return next_status;
end
$$;

-- Tells Postgres where the dispatch function is and which key to send (service role only):
--   select public.alert_configure_dispatch('https://<ref>.supabase.co/functions/v1/dispatch', '<secret key>');
-- Pass a null key to keep the key in Vault instead (vault.create_secret('<key>', 'agent_status_dispatch_key')).
create function public.alert_configure_dispatch(p_url text, p_key text default null) returns void
  language plpgsql security definer set search_path = ''
as $$
begin
  perform agent_private.require_service();
  insert into agent_private.alert_dispatch_target (url, key) values (p_url, p_key)
  on conflict (id) do update set url = excluded.url, key = excluded.key;
end
$$;

-- The configured key: Vault's first, else the settings row's; null when none is set.
create function agent_private.alert_dispatch_key() returns text
  language plpgsql stable security definer set search_path = ''
as $$
declare
  v_key text;
begin
  if to_regclass('vault.decrypted_secrets') is not null then
    execute 'select decrypted_secret from vault.decrypted_secrets where name = $1' into v_key using 'agent_status_dispatch_key';
  end if;
  return coalesce(v_key, (select key from agent_private.alert_dispatch_target));
end
$$;

-- Whether a caller of the dispatch function presented the configured key. Digests are compared, so
-- how long the comparison takes says nothing about the key.
create function public.alert_dispatch_authorized(p_key text) returns boolean
  language sql stable security definer set search_path = ''
as $$
  select p_key is not null and agent_private.alert_dispatch_key() is not null
     and extensions.digest(p_key, 'sha256') = extensions.digest(agent_private.alert_dispatch_key(), 'sha256')
$$;

create or replace function agent_private.alert_wake() returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  v_url text := (select url from agent_private.alert_dispatch_target);
begin
  if to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is null or v_url is null then
    return;
  end if;
  execute 'select net.http_post(url => $1, body => $2, headers => $3, timeout_milliseconds => 30000)'
    using v_url, '{}'::jsonb,
          jsonb_build_object('content-type', 'application/json', 'authorization', 'Bearer ' || agent_private.alert_dispatch_key());
end
$$;

-- One pg_net wake per transaction, not one per delivery: each delivery is its own INSERT statement,
-- so the statement trigger woke the dispatcher once per delivery, and a sweep that found 50 agents
-- silent (or 1,000 flips committed together) queued 50 (1,000) HTTP calls to the dispatch function,
-- each a billed invocation, where one drains them all. A transaction-local flag remembers the wake.
create or replace function agent_private.alert_deliveries_wake() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  if current_setting('agent_status.alert_woken', true) = 'yes' then
    return null;
  end if;
  perform set_config('agent_status.alert_woken', 'yes', true);
  perform agent_private.alert_wake();
  return null;
exception when others then
  -- a wake is a latency hint; the schedule catches up, and a flip must never fail because of it
  raise warning 'agent-status: could not wake the dispatcher: %', sqlerrm;
  return null;
end
$$;

-- The dispatcher records a claimed batch's attempts in one call instead of one transaction per
-- delivery: 1,000 notices were 1,000 commits (each an fsync) on top of 1,000 HTTP requests.
-- p_results: [{"id", "attempt", "ok", "http_status", "response", "error", "duration_ms"}, ...].
-- Answers how each one settled, in order (delivered, pending, dead, or stale for a lost lease).
create function public.alert_complete_batch(p_results jsonb, p_dispatcher text default null) returns text[]
  language plpgsql security definer set search_path = ''
as $$
declare
  r jsonb;
  settled text[] := '{}';
begin
  perform agent_private.require_service();
  if jsonb_typeof(p_results) is distinct from 'array' or jsonb_array_length(p_results) > 500 then
    perform agent_private.invalid('results must be a JSON array of at most 500 attempts');
  end if;
  for r in select value from jsonb_array_elements(p_results) loop
    settled := settled || public.alert_complete((r ->> 'id')::bigint, (r ->> 'attempt')::integer, (r ->> 'ok')::boolean,
      (r ->> 'http_status')::integer, r ->> 'response', r ->> 'error', (r ->> 'duration_ms')::integer, p_dispatcher);
  end loop;
  return settled;
end
$$;

create trigger alert_deliveries_wake
  after insert on public.alert_deliveries
  for each STATEMENT
  execute function agent_private.alert_deliveries_wake();
