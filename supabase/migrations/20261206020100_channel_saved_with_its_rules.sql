-- A channel and its rules saved in one transaction: alert_channel_save takes p_rules.
-- Written by hand: a new parameter changes the signature, which pg-delta plans as a DROP that
-- db:diff refuses.

drop function public.alert_channel_save(text, text, text, text, jsonb, text);

-- Creates a channel or replaces one of the same name. A null endpoint or secret keeps the stored one
-- (so renaming a rule never needs the secret again); p_secret '' removes it. p_rules, when given, are
-- set in the same transaction (alert_channel_rules): a refused rule leaves no channel half saved (the
-- Alerts page saved a channel, then its rules, and a refused rule left a new channel with defaults).
create function public.alert_channel_save(
  p_name text, p_kind text, p_endpoint text default null, p_secret text default null, p_settings jsonb default null,
  p_operator_token text default null, p_rules jsonb default null
) returns uuid
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  old public.alert_channels;
  v_endpoint text;
  v_secret text;
  v_settings jsonb;
  v_id uuid;
begin
  select * into old from public.alert_channels where name = p_name;
  v_settings := coalesce(p_settings, old.settings, '{}');
  v_endpoint := coalesce(nullif(btrim(p_endpoint), ''), case when old.kind = p_kind then old.endpoint end,
                         agent_private.default_endpoint(p_kind, v_settings));
  v_secret := case when p_secret = '' then null else coalesce(p_secret, old.secret) end;
  if p_kind is null or p_kind not in ('webhook', 'slack', 'discord', 'telegram', 'ntfy', 'email', 'pagerduty') then
    perform agent_private.invalid(format('unknown channel kind %L', p_kind),
      'Use one of: webhook, slack, discord, telegram, ntfy, email, pagerduty.');
  end if;
  if v_endpoint is null then
    perform agent_private.invalid(format('a %s channel needs its URL as the endpoint', p_kind));
  end if;
  perform agent_private.check_channel(p_kind, v_endpoint, v_secret, v_settings);
  insert into public.alert_channels as ch (name, kind, endpoint, secret, settings, created_by)
  values (p_name, p_kind, v_endpoint, v_secret, v_settings, who)
  on conflict (name) do update set kind = excluded.kind, endpoint = excluded.endpoint, secret = excluded.secret,
    settings = excluded.settings, updated_at = now()
  returning ch.id into v_id;
  if p_rules is not null then
    perform public.alert_channel_rules(p_name, p_rules, p_operator_token);
  end if;
  return v_id;
exception
  when check_violation or not_null_violation then
    perform agent_private.invalid(format('bad channel: %s', sqlerrm),
      'The name is 1..100 characters, the endpoint an http(s) URL, settings a small JSON object.');
end
$$;

grant execute on function public.alert_channel_save(text, text, text, text, jsonb, text, jsonb) to anon, authenticated, service_role;
revoke all on function public.alert_channel_save(text, text, text, text, jsonb, text, jsonb) from public;
