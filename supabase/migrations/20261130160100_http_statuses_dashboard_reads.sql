-- Not found and conflict from the dashboard's functions (agent_availability, agent_history and the
-- logs on demand) reach PostgREST callers as 404 and 409, like every other function since
-- 20261130130040: the same bodies, raising through agent_private.refuse instead of a bare raise
-- (which PostgREST answers with 500). Direct SQL callers still get P0002 and 55000.

create or replace function public.agent_availability(
  p_agent_name text,
  p_until timestamptz default null,
  p_operator_token text default null
) returns jsonb
  language plpgsql stable security definer set search_path = ''
as $$
declare
  v_agent_id integer;
  v_until timestamptz := coalesce(p_until, now());
  v_windows jsonb := '{}';
  w record;
begin
  perform agent_private.require_operator(p_operator_token);
  select id into v_agent_id from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name);
  if v_agent_id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  for w in select * from (values ('24h', interval '24 hours'), ('7d', interval '7 days'), ('30d', interval '30 days')) v(label, span) loop
    v_windows := v_windows || jsonb_build_object(w.label, (
      select jsonb_build_object(
        'seconds', coalesce(jsonb_object_agg(s.status, s.seconds), '{}'),
        'known_s', coalesce(sum(s.seconds), 0),
        'up_percent', case when sum(s.seconds) > 0
          then round((100 * coalesce(sum(s.seconds) filter (where s.status in ('running', 'warning')), 0) / sum(s.seconds))::numeric, 2)
          end)
      from (select g.status, sum(extract(epoch from g.seg_to - g.seg_from))::double precision as seconds
            from agent_private.status_segments(v_agent_id, v_until - w.span, v_until) g
            group by g.status) s));
  end loop;
  return jsonb_build_object(
    'until', v_until,
    'windows', v_windows,
    'strip', coalesce((select jsonb_agg(jsonb_build_object('from', g.seg_from, 'to', g.seg_to, 'status', g.status) order by g.seg_from)
                       from agent_private.status_segments(v_agent_id, v_until - interval '24 hours', v_until) g), '[]'));
end
$$;

create or replace function public.agent_history(
  p_agent_name text,
  p_before_id bigint default null,
  p_kinds text default null,
  p_limit integer default 50,
  p_operator_token text default null
) returns table (id bigint, oldest_id bigint, count integer, cycle text[], first_at timestamptz, at timestamptz,
                 kind text, source text, actor text, from_status text, to_status text, health integer,
                 message text, details jsonb)
  language plpgsql stable security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  v_agent_id integer;
  r record;
  ev public.agent_events;
  sig text;
  -- the run being read (newest event first): its newest and oldest events, size, cycle length
  -- (0 while it holds one event), the signatures of its first two events and its first events
  g_newest public.agent_events;
  g_oldest public.agent_events;
  g_count integer := 0;
  g_period integer := 0;
  g_sig1 text;
  g_sig2 text;
  g_kind2 text;
  g_early public.agent_events[] := '{}';
  -- runs read to the end, waiting to be returned
  q_newest public.agent_events[] := '{}';
  q_oldest public.agent_events[] := '{}';
  q_count integer[] := '{}';
  q_cycle text[] := '{}';
  emitted integer := 0;
  -- events still to read: the current one, and those of a run that turned out to be none
  todo public.agent_events[];
  have boolean;
  i integer;
begin
  perform agent_private.require_operator(p_operator_token);
  if p_limit is null or p_limit < 1 or p_limit > 500 then
    perform agent_private.invalid(format('limit must be between 1 and 500, got %s', p_limit));
  end if;
  if p_kinds is not null and p_kinds not in ('status', 'problems', 'commands', 'operator') then
    perform agent_private.invalid(format('kinds must be status, problems, commands or operator, got %L', p_kinds));
  end if;
  select a.id into v_agent_id from public.agent_status a where a.agent_name = agent_private.check_agent_name(p_agent_name);
  if v_agent_id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;

  -- At most 5,000 events per page are read; a longer run is continued by the next page. The last
  -- row (is_end) closes the run in progress.
  for r in
    select t.ev, t.is_end from (
      (select x as ev, false as is_end, x.id
       from public.agent_events x
       where x.agent_id = v_agent_id and (p_before_id is null or x.id < p_before_id)
         and case p_kinds
           when 'status' then x.to_status is distinct from x.from_status and x.to_status is not null
           when 'problems' then x.kind in ('warning', 'error', 'crashed', 'deadline', 'inactive')
           when 'commands' then x.kind like 'command\_%'
           when 'operator' then x.source = 'operator'
           else true end
       order by x.id desc
       limit 5000)
      union all
      select null, true, null
    ) t
    order by t.is_end, t.id desc
  loop
    todo := case when r.is_end then '{}' else array[r.ev] end;
    loop
      have := cardinality(todo) > 0;
      exit when not have and not r.is_end;
      if have then
        ev := todo[1];
        todo := todo[2:];
        sig := concat_ws('|', ev.kind, ev.source, ev.from_status, ev.to_status, regexp_replace(coalesce(ev.message, ''), '[0-9]+', '#', 'g'));
      end if;
      if have and g_count > 0 and (
           g_period = 0
           or (g_period = 1 and sig = g_sig1)
           or (g_period = 2 and sig = case when g_count % 2 = 0 then g_sig1 else g_sig2 end)) then
        -- the event continues the run
        if g_period = 0 then
          g_period := case when sig = g_sig1 then 1 else 2 end;
          g_sig2 := sig;
          g_kind2 := ev.kind;
        end if;
        g_oldest := ev;
        g_count := g_count + 1;
        if g_count <= 3 then g_early := g_early || ev; end if;
        continue;
      end if;
      -- the run ends here. A two-event cycle shorter than two rounds is no run: its first event goes
      -- alone and the others are read again (they may start a run of their own).
      if g_count > 0 and g_period = 2 and g_count < 4 then
        q_newest := q_newest || g_early[1];
        q_oldest := q_oldest || g_early[1];
        q_count := q_count || 1;
        q_cycle := q_cycle || (g_early[1]).kind;
        todo := g_early[2:] || case when have then array[ev] else '{}' end || todo;
        have := false;
      elsif g_count > 0 then
        q_newest := q_newest || g_newest;
        q_oldest := q_oldest || g_oldest;
        q_count := q_count || g_count;
        q_cycle := q_cycle || case when g_period = 2
          then g_oldest.kind || ',' || case when g_oldest.kind = g_newest.kind then g_kind2 else g_newest.kind end
          else g_newest.kind end;
      end if;
      g_count := 0;
      for i in 1 .. cardinality(q_count) loop
        if emitted >= p_limit then return; end if;
        id := (q_newest[i]).id;
        oldest_id := (q_oldest[i]).id;
        count := q_count[i];
        cycle := string_to_array(q_cycle[i], ',');
        first_at := (q_oldest[i]).at;
        at := (q_newest[i]).at;
        kind := (q_newest[i]).kind;
        source := (q_newest[i]).source;
        actor := (q_newest[i]).actor;
        from_status := (q_newest[i]).from_status;
        to_status := (q_newest[i]).to_status;
        health := (q_newest[i]).health;
        message := (q_newest[i]).message;
        details := (q_newest[i]).details;
        return next;
        emitted := emitted + 1;
      end loop;
      q_newest := '{}';
      q_oldest := '{}';
      q_count := '{}';
      q_cycle := '{}';
      if have then
        g_newest := ev;
        g_oldest := ev;
        g_count := 1;
        g_period := 0;
        g_sig1 := sig;
        g_early := array[ev];
      elsif cardinality(todo) = 0 then
        return;
      end if;
    end loop;
  end loop;
end
$$;

create or replace function public.request_agent_logs(
  p_agent_name text,
  p_lines integer default 200,
  p_operator_token text default null
) returns bigint
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a record;
  v_id bigint;
begin
  if p_lines is null or p_lines < 1 or p_lines > 500 then
    perform agent_private.invalid(format('lines must be between 1 and 500, got %s', p_lines));
  end if;
  select s.id, s.agent_name, s.runner_id, r.host into a
  from public.agent_status s left join public.runners r on r.id = s.runner_id
  where s.agent_name = agent_private.check_agent_name(p_agent_name);
  if a.id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  if a.runner_id is null then
    perform agent_private.refuse('55000', format('no runner manages agent %L, so no runner can read its logs', p_agent_name),
      'Logs on demand come from the runner that started the agent; add the agent to its host''s runner config.');
  end if;
  delete from public.agent_log_requests where requested_at < now() - interval '10 minutes';
  if (select count(*) from public.agent_log_requests where agent_id = a.id and answered_at is null) >= 10 then
    raise exception using errcode = '54000',
      message = format('10 log requests for %L are already waiting for the runner on %s', p_agent_name, a.host),
      hint = 'Wait for their answers (or for them to expire after 10 minutes); is the runner on that host running?';
  end if;
  insert into public.agent_log_requests (agent_id, lines, requested_by) values (a.id, p_lines, who) returning id into v_id;
  -- a hint for runners with a database connection; they poll anyway
  perform pg_notify('agent_log_requests', a.host);
  return v_id;
end
$$;

create or replace function public.operator_agent_logs(p_request_id bigint, p_operator_token text default null)
  returns table (id bigint, agent_name text, lines integer, requested_by text, requested_at timestamptz,
                 claimed_at timestamptz, answered_at timestamptz, stdout jsonb, stderr jsonb, error text,
                 observed_at timestamptz)
  language plpgsql stable security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  return query
    select l.id, a.agent_name, l.lines, l.requested_by, l.requested_at, l.claimed_at, l.answered_at,
           l.stdout, l.stderr, l.error, now()
    from public.agent_log_requests l join public.agent_status a on a.id = l.agent_id
    where l.id = p_request_id;
  if not found then
    perform agent_private.refuse('P0002', format('no log request %s', p_request_id),
      'Requests are kept 10 minutes; ask again with request_agent_logs.');
  end if;
end
$$;

create or replace function public.runner_answer_log_request(
  p_token text,
  p_request_id bigint,
  p_stdout jsonb default null,
  p_stderr jsonb default null,
  p_error text default null
) returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  v_lines integer;
  v_stream jsonb;
begin
  perform agent_private.check_text('error', p_error, 4000);
  select l.lines into v_lines from public.agent_log_requests l join public.agent_status a on a.id = l.agent_id
  where l.id = p_request_id and a.runner_id = r.id and l.claimed_at is not null and l.answered_at is null;
  if v_lines is null then
    perform agent_private.refuse('55000', format('log request %s is not waiting for an answer from the runner on %s', p_request_id, r.host),
      'It was answered already, or it expired; claim new requests instead.');
  end if;
  foreach v_stream in array array[coalesce(p_stdout, '[]'), coalesce(p_stderr, '[]')] loop
    if jsonb_typeof(v_stream) <> 'array' or jsonb_array_length(v_stream) > v_lines
       or exists (select 1 from jsonb_array_elements(v_stream) x
                  where jsonb_typeof(x) <> 'string' or char_length(x #>> '{}') > 1000) then
      perform agent_private.invalid(format('stdout and stderr must be arrays of at most %s strings of at most 1000 characters', v_lines));
    end if;
  end loop;
  update public.agent_log_requests set answered_at = now(), stdout = coalesce(p_stdout, '[]'),
    stderr = coalesce(p_stderr, '[]'), error = p_error
  where id = p_request_id;
end
$$;
