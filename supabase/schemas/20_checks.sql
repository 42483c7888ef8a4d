-- Input checks and the SQL API's error conventions (SQLSTATE to HTTP status).
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-------------------------------------------------------------------------------------------------------
-- Errors and input checks
-------------------------------------------------------------------------------------------------------
create function agent_private.invalid(p_message text, p_hint text default null) returns void
  language plpgsql immutable set search_path = ''
as $$
begin
  raise exception using errcode = '22023', message = p_message, hint = coalesce(p_hint, '');
end
$$;

create function agent_private.check_agent_name(p_agent_name text) returns text
  language plpgsql immutable set search_path = ''
as $$
begin
  if p_agent_name is null or p_agent_name = '' then
    perform agent_private.invalid('agent_name is required', 'Send the agent''s name exactly as it appears in agent_status.agent_name.');
  elsif char_length(p_agent_name) > 100 then
    perform agent_private.invalid(format('agent_name is %s characters long; the limit is 100', char_length(p_agent_name)));
  elsif p_agent_name <> btrim(p_agent_name) then
    perform agent_private.invalid('agent_name has leading or trailing spaces', 'Remove them: names must match exactly.');
  elsif p_agent_name ~ '[[:cntrl:]]' then
    perform agent_private.invalid('agent_name contains control characters');
  end if;
  return p_agent_name;
end
$$;

create function agent_private.check_text(p_field text, p_value text, p_limit integer) returns text
  language plpgsql immutable set search_path = ''
as $$
begin
  if p_value is not null and char_length(p_value) > p_limit then
    perform agent_private.invalid(
      format('%s is %s characters long; the limit is %s', p_field, char_length(p_value), p_limit),
      'Send a shorter text; put long output in your own logs.');
  end if;
  return p_value;
end
$$;

create function agent_private.check_health(p_health integer) returns integer
  language plpgsql immutable set search_path = ''
as $$
begin
  if p_health is not null and (p_health < 0 or p_health > 100) then
    perform agent_private.invalid(format('health must be between 0 and 100, got %s', p_health));
  end if;
  return p_health;
end
$$;

create function agent_private.check_status(p_status text, p_allowed text[]) returns public.agent_status_value
  language plpgsql immutable set search_path = ''
as $$
begin
  if p_status is null or not (p_status = any (p_allowed)) then
    perform agent_private.invalid(
      format('status must be one of %s, got %s', array_to_string(p_allowed, ', '), coalesce(quote_literal(p_status), 'nothing')));
  end if;
  return p_status::public.agent_status_value;
end
$$;

-- Enough of a secret to recognise it, never enough to use it.
create function agent_private.mask(p_secret text) returns text
  language sql immutable set search_path = ''
as $$
  select case when p_secret is null then null
              when char_length(p_secret) <= 8 then '••••'
              else '••••' || right(p_secret, 4) end
$$;

-- A URL with its path and query masked: scheme and host stay readable (which Slack, which ntfy server).
create function agent_private.mask_url(p_url text) returns text
  language sql immutable set search_path = ''
as $$
  select coalesce(substring(p_url from '^[a-z]+://[^/?#]+'), '') ||
         case when p_url ~ '^[a-z]+://[^/?#]+[/?#].' then '/' || agent_private.mask(substring(p_url from '^[a-z]+://[^/?#]+(.*)$')) else '' end
$$;

-- Checks a channel's kind-specific settings, so a mistake is refused when made, not at 3 a.m.
create function agent_private.check_channel(p_kind text, p_endpoint text, p_secret text, p_settings jsonb) returns void
  language plpgsql immutable set search_path = ''
as $$
begin
  if p_kind = 'telegram' and (p_secret is null or p_settings ->> 'chat_id' is null) then
    perform agent_private.invalid('a telegram channel needs the bot token as its secret and settings.chat_id',
      'agent-status alerts channel add NAME --kind telegram --secret BOT_TOKEN --chat-id CHAT_ID');
  elsif p_kind = 'ntfy' and coalesce(p_settings ->> 'topic', '') = '' then
    perform agent_private.invalid('an ntfy channel needs settings.topic', 'agent-status alerts channel add NAME --kind ntfy --topic TOPIC');
  elsif p_kind = 'email' and (p_secret is null or p_settings ->> 'from' is null or p_settings ->> 'to' is null
                              or coalesce(p_settings ->> 'provider', 'resend') not in ('resend', 'postmark')) then
    perform agent_private.invalid('an email channel needs its API key as the secret, settings.from, settings.to and provider resend or postmark',
      'agent-status alerts channel add NAME --kind email --provider resend --secret API_KEY --from alerts@example.com --to you@example.com');
  elsif p_kind = 'pagerduty' and p_secret is null then
    perform agent_private.invalid('a pagerduty channel needs the integration (routing) key as its secret');
  end if;
end
$$;

-- The answers of a batch (agent_heartbeat_batch, runner_report_batch): one empty slot per item, once
-- the batch is a JSON array of at most 50. More than 64 subtransactions overflow a backend's
-- subtransaction cache and slow every snapshot on the server, so batches stay below that even when
-- their items run one by one. No `set search_path` (every name qualified): the heartbeat batch calls
-- it on its hot path, where a search_path switch per call costs.
create function agent_private.batch_answers(p_items jsonb, p_what text, p_item_shape text) returns jsonb[]
  language plpgsql immutable
as $$
begin
  if p_items is null or jsonb_typeof(p_items) <> 'array' then
    perform agent_private.invalid(format('%s must be a JSON array of %s objects', p_what, p_item_shape));
  end if;
  if jsonb_array_length(p_items) > 50 then
    perform agent_private.invalid(format('at most 50 %s per batch, got %s', p_what, jsonb_array_length(p_items)));
  end if;
  return array_fill(null::jsonb, array[jsonb_array_length(p_items)]);
end
$$;

-- Whether a batch item that failed with this SQLSTATE was refused for good: the caller's mistake, what
-- the single call answers with a 4xx (bad input 22, a broken constraint 23, the token 28, not found
-- P0002, a conflict 55000), so sending it again cannot help. Anything else may pass on another try: a
-- lock wait given up (55P03, in the same class 55 as a conflict), a serialization failure or deadlock
-- (class 40), a fault. Sent again, a report is applied once all the same (its report_id).
create function agent_private.refused_for_good(p_sqlstate text) returns boolean
  language sql immutable
as $$
  select coalesce(left(p_sqlstate, 2) in ('22', '23', '28') or p_sqlstate in ('P0002', '55000'), false)
$$;

-- A batch item's failure as the batch answers it, with what the single call would have raised:
-- {error: ...} refused for good (refused_for_good), {retry: ...} otherwise. The values come from
-- GET STACKED DIAGNOSTICS, which only the handler itself can run.
create function agent_private.batch_item_failure(p_sqlstate text, p_message text, p_hint text) returns jsonb
  language sql immutable
as $$
  select jsonb_build_object(case when agent_private.refused_for_good(p_sqlstate) then 'error' else 'retry' end,
    jsonb_build_object('sqlstate', p_sqlstate, 'message', p_message, 'hint', nullif(p_hint, '')))
$$;

-- Not found and conflict answered with their HTTP meaning through PostgREST. PostgREST sends SQLSTATE
-- P0002 (no_data_found) and 55000 (object_not_in_prerequisite_state) as HTTP 500, so an operator
-- asking for an agent that does not exist saw a server error. Raised through this helper, they reach
-- PostgREST callers as 404 and 409 with the same body as before (code, message, hint: clients that
-- branch on the code see no difference), and direct database callers (the edge functions' own
-- connection, psql) as the plain SQLSTATE, as before. PostgREST marks its requests with the
-- request.method setting; nothing else sets it.
-- P0422 (ours, in PL/pgSQL's class) is an idempotency key sent again with another request: 422.
create function agent_private.refuse(p_sqlstate text, p_message text, p_hint text default null) returns void
  language plpgsql stable set search_path = ''
as $$
declare
  http integer := case p_sqlstate when 'P0002' then 404 when '55000' then 409 when 'P0422' then 422 end;
begin
  if http is not null and coalesce(current_setting('request.method', true), '') <> '' then
    raise sqlstate 'PGRST' using
      message = json_build_object('code', p_sqlstate, 'message', p_message, 'details', null, 'hint', nullif(p_hint, ''))::text,
      detail = json_build_object('status', http, 'headers', json_build_object())::text;
  end if;
  raise exception using errcode = p_sqlstate, message = p_message, hint = coalesce(p_hint, '');
end
$$;
