-- The SQL API, in this migration and the next ones up to 20261124000370_live_view.sql (one concern
-- each): every state transition of agent-status is one of these functions. TypeScript (edge
-- functions, runner, CLI, dashboard) validates input for friendly messages and then calls them; it
-- never read-modify-writes a row. Errors use SQLSTATEs the callers map to HTTP statuses:
--   22023 invalid input (400), 28000 bad token (401), 42501 not an operator (403),
--   P0002 not found (404), 55000 conflict with the current state (409).

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
