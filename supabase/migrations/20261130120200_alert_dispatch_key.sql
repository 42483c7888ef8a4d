-- The dispatch function no longer trusts the service role key (the functions do not receive it any
-- more): its callers present the dispatch key that Postgres itself holds, in Vault as
-- agent_status_dispatch_key or in agent_private.alert_dispatch_target (public.alert_configure_dispatch).
-- pg_net sends that key, the local stack sets one at start, and the function asks Postgres whether a
-- presented key is it. One key, kept in one place, readable only by the service role.

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

revoke execute on function agent_private.alert_dispatch_key() from public, anon, authenticated, service_role;
revoke execute on function public.alert_dispatch_authorized(text) from public, anon, authenticated;
grant execute on function public.alert_dispatch_authorized(text) to service_role;
