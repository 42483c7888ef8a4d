-- History that reads: one agent's events newest first, a page at a time (keyset on the event id),
-- optionally only one kind, with runs of identical events folded into one row. A crash loop is a run
-- of a two-event cycle (crashed, started, crashed, started...): it folds into "crashed and started
-- x37", so its page stays short. Events are identical when kind, source, statuses and message match,
-- digits aside (pids, attempt numbers and exit codes do not make a crash a different one).

create index agent_events_agent_id_idx on public.agent_events (agent_id, id);

-- p_before_id: the oldest_id of the last row of the previous page (null: the newest page).
-- p_kinds: 'status' (status changes), 'problems' (warnings, errors, crashes, missed deadlines),
-- 'commands', 'operator' (what operators did), or null for everything.
-- Each row: the newest event of its run (id, kind, ... details), the run's oldest event id and time,
-- how many events it holds, and its cycle: one kind, or two for an alternating run (oldest first).
create function public.agent_history(
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
    raise exception using errcode = 'P0002', message = format('no agent named %L', p_agent_name),
      hint = 'List agents with: agent-status list';
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

revoke execute on function public.agent_history(text, bigint, text, integer, text) from public;
grant execute on function public.agent_history(text, bigint, text, integer, text) to anon, authenticated, service_role;
