-- What agents and operators say about an agent: heartbeats (one and batched), reports, forced status, timeouts, archiving.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-- A batch is applied in two parts. Steady heartbeats (the agent is running or warning, not in a crash
-- loop, and the heartbeat changes neither its status, its health, its declared interval nor anything
-- apply_event would write an event for) are applied by agent_private.steady_heartbeats in a few
-- set-based statements. Everything else (the first heartbeat, a status or health change, a refusal)
-- goes through agent_heartbeat and apply_event one by one, as before. Measured with `npm run bench`
-- (docs/api.md): the per-item path cost about 230 µs of PostgreSQL CPU per heartbeat, mostly
-- PL/pgSQL calls, the constraint checks of one single-row UPDATE each, and search_path switches.
--
-- A lock wait gives up after 2 s (55P03, nothing of the batch written): well inside the heartbeat
-- function's answer deadline (5 s, AGENT_STATUS_DB_TIMEOUT_MS) and anon's 3 s statement limit on
-- Supabase, so a batch stuck behind a locked row is rolled back by the server instead of committing
-- after its caller was answered 503 (issue 20). The function also bounds the whole statement by what
-- is left of its deadline (statement_timeout, supabase/functions/_shared/database.ts), which covers a
-- batch that meets several locks in turn.
create function public.agent_heartbeat_batch(p_heartbeats jsonb) returns jsonb
  language plpgsql security definer set search_path = '' set lock_timeout = '2s'
as $$
declare
  item jsonb;
  n bigint;
  answers jsonb[] := agent_private.batch_answers(p_heartbeats, 'heartbeats', '{"token", "agent_name", ...}');
  tried jsonb[];
  steady record;
  v_state text;
  v_message text;
  v_hint text;
begin
  perform agent_private.lock_batch_agents(p_heartbeats);

  for steady in select * from agent_private.steady_heartbeats(p_heartbeats) loop
    answers[steady.n] := jsonb_build_object('agent', steady.agent);
  end loop;
  if array_position(answers, null) is null then
    return to_jsonb(answers);  -- all steady (the usual batch): no subtransaction for the rest
  end if;

  -- The rest, all in one subtransaction (tried: PL/pgSQL variables outlive a rolled-back one)
  begin
    tried := answers;
    for item, n in
      select value, ordinality from jsonb_array_elements(p_heartbeats) with ordinality
      where answers[ordinality] is null
      order by value ->> 'agent_name', ordinality
    loop
      tried[n] := agent_private.heartbeat_batch_item(item);
    end loop;
    return to_jsonb(tried);
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate;
    if not agent_private.refused_for_good(v_state) then
      raise;  -- not the caller's mistake: the whole batch fails, as below
    end if;
    -- some heartbeat was refused and this part rolled back: go one by one below
  end;

  for item, n in
    select value, ordinality from jsonb_array_elements(p_heartbeats) with ordinality
    where answers[ordinality] is null
    order by value ->> 'agent_name', ordinality
  loop
    begin
      answers[n] := agent_private.heartbeat_batch_item(item);
    exception when others then
      -- Only the caller's mistakes are answered per item; anything else (a lock wait given up, a
      -- deadlock) fails the whole batch, nothing of it written, so its caller sends it again (the
      -- heartbeat function answers 503; the runner keeps what it relayed). An {error} is a refusal
      -- to the runner: it would drop the heartbeat and log that the database refused it.
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_hint = pg_exception_hint;
      if not agent_private.refused_for_good(v_state) then
        raise;
      end if;
      answers[n] := agent_private.batch_item_failure(v_state, v_message, v_hint);
    end;
  end loop;
  return to_jsonb(answers);
end
$$;

comment on function public.agent_heartbeat_batch(jsonb) is 'Applies [{token, agent_name, status?, health?, last_activity?, pid?}, ...] through agent_heartbeat; answers [{agent: {...}} | {error: {sqlstate, message, hint}}] in the same order.';

-- Locks the rows of the agents a batch names (heartbeats, reports) first, in agent_name order: the
-- same order in every batch, so two batches naming the same agents wait for each other instead of
-- deadlocking between their parts. p_runner_id: only that runner's agents. No `set search_path`
-- (every name qualified), as agent_private.batch_answers.
create function agent_private.lock_batch_agents(p_items jsonb, p_runner_id uuid default null) returns void
  language plpgsql
as $$
begin
  perform 1 from public.agent_status a
  where a.agent_name in (select e.value ->> 'agent_name' from jsonb_array_elements(p_items) e
                         where jsonb_typeof(e.value) = 'object')
    and (p_runner_id is null or a.runner_id = p_runner_id)
  order by a.agent_name
  for update;
end
$$;

create function public.agent_heartbeat(
  p_token text,
  p_agent_name text,
  p_status text default null,
  p_health integer default null,
  p_activity text default null,
  p_pid integer default null,
  p_heartbeat_interval_s integer default null,
  p_at timestamptz default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who record;
  event text;
begin
  if p_status is not null then
    perform agent_private.check_status(p_status, array['running', 'warning', 'error']);
  end if;
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('activity', p_activity, 1000);
  if p_heartbeat_interval_s is not null and (p_heartbeat_interval_s < 1 or p_heartbeat_interval_s > 86400) then
    perform agent_private.invalid(format('heartbeat_interval_s must be between 1 and 86400 seconds, got %s', p_heartbeat_interval_s));
  end if;
  who := agent_private.authorize_agent(p_token, p_agent_name);
  event := coalesce(p_status, case when p_activity is not null then 'activity' else 'heartbeat' end);
  return agent_private.apply_event(who.agent_id, event, who.source, who.actor,
    p_health => p_health, p_activity => p_activity, p_pid => p_pid, p_at => p_at,
    p_heartbeat_interval_s => p_heartbeat_interval_s);
end
$$;

-- One heartbeat of a batch, applied as agent_heartbeat applies it (passing the interval and the time
-- on), answered by agent_state_json.
create or replace function agent_private.heartbeat_batch_item(item jsonb) returns jsonb
  language plpgsql set search_path = ''
as $$
declare
  agent public.agent_status;
begin
  if jsonb_typeof(item) <> 'object' then
    perform agent_private.invalid('each heartbeat must be a JSON object');
  end if;
  agent := public.agent_heartbeat(
    item ->> 'token', item ->> 'agent_name', item ->> 'status',
    (item ->> 'health')::integer, item ->> 'last_activity', (item ->> 'pid')::integer,
    (item ->> 'heartbeat_interval_s')::integer, (item ->> 'at')::timestamptz);
  return jsonb_build_object('agent', agent_private.agent_state_json(agent));
end
$$;

-- The steady heartbeats of a batch (see agent_heartbeat_batch), applied set-based in one statement:
-- one token lookup, one UPDATE of every such agent, one delivery of the stop/restart commands waiting
-- for them, one touch of the tokens' last use. Each column is set as apply_event sets it for a
-- heartbeat that keeps a running or warning agent's status and health and writes no event, through
-- the same definitions: the status from agent_private.next_agent_status (the state machine, which
-- must leave it as it is), the heartbeat deadline from heartbeat_timeout_s, the activity deadline
-- from activity_deadline, the restarts kept from recent_restarts, the answer from
-- agent_state_answer; what is left here is proof of life now and the pid and activity taken. An item
-- whose field would be refused, or whose agent appears twice, is not steady and goes the one-by-one
-- way. tests/functions/heartbeat-batch.test.ts applies every status and heartbeat shape both ways in
-- one transaction and requires the same row and answer. The caller holds the rows' locks
-- (agent_heartbeat_batch locks them in name order first).
-- PL/pgSQL only so its plan is cached: a SQL function's body is planned again on every call, which
-- took longer than running it. Every helper it calls per row is inlined (no function call per row:
-- see agent_private.agent_state_answer).
create function agent_private.steady_heartbeats(p_heartbeats jsonb)
  returns table (n bigint, agent jsonb)
  language plpgsql volatile set search_path = ''
as $$
begin
  return query
  with item as materialized (
    select e.ordinality as n, agent_private.hash_token(e.value ->> 'token') as token_hash, e.value ->> 'agent_name' as agent_name,
           coalesce(e.value ->> 'status', case when e.value ->> 'last_activity' is not null then 'activity' else 'heartbeat' end) as event,
           case when e.value ->> 'health' ~ '^\d{1,3}$' then (e.value ->> 'health')::integer end as health,
           e.value ->> 'last_activity' as activity,
           case when e.value ->> 'pid' ~ '^[1-9]\d{0,8}$' then (e.value ->> 'pid')::integer end as pid,
           case when e.value ->> 'heartbeat_interval_s' ~ '^\d{1,5}$' then (e.value ->> 'heartbeat_interval_s')::integer end as interval_s,
           e.value ->> 'heartbeat_interval_s' is null as no_interval
    -- mentions: how often the batch names the agent, malformed items included
    from (select x.*, count(*) over (partition by x.value ->> 'agent_name') as mentions
          from jsonb_array_elements(p_heartbeats) with ordinality x) e
    -- an agent named twice goes one by one, in order
    where e.mentions = 1
      and jsonb_typeof(e.value) = 'object'
      and char_length(e.value ->> 'token') between 1 and 200
      and coalesce(e.value ->> 'status', 'running') = 'running'
      -- (a CASE, not AND: AND may cast before it tests)
      and (case when e.value ->> 'health' is null then true
                when e.value ->> 'health' ~ '^\d{1,3}$' then (e.value ->> 'health')::integer <= 100 else false end)
      and (e.value ->> 'pid' is null or e.value ->> 'pid' ~ '^[1-9]\d{0,8}$')
      and (e.value ->> 'heartbeat_interval_s' is null or e.value ->> 'heartbeat_interval_s' ~ '^\d{1,5}$')
      and coalesce(char_length(e.value ->> 'last_activity'), 0) <= 1000
      and e.value ->> 'at' is null
  ),
  -- read once (joined per row, the settings table was scanned again for every heartbeat)
  settings as materialized (select st as s from public.agent_status_settings st limit 1),
  steady as materialized (
    select i.n, i.activity, i.pid, i.health, a.id as agent_id, t.id as token_id, t.last_used_at,
           agent_private.heartbeat_timeout_s(a, settings.s) as heartbeat_timeout_s,
           agent_private.activity_timeout(a, settings.s) as activity_timeout_s
    from settings, item i
    join public.api_tokens t on t.token_hash = i.token_hash and t.revoked_at is null
                            and (t.expires_at is null or t.expires_at > now()) and t.kind in ('agent', 'runner')
    join public.agent_status a on a.agent_name = i.agent_name
    where ((t.kind = 'agent' and a.id = t.agent_id)
           or (t.kind = 'runner' and exists (select 1 from public.runners r where r.id = a.runner_id and r.host = t.host)))
      and a.status in ('running', 'warning') and a.unstable_since is null
      and agent_private.next_agent_status(a.status, a.status_source, i.event, null, false) = a.status
      and (i.event <> 'running' or a.status_source = case t.kind when 'agent' then 'agent' else 'runner' end)
      and coalesce(i.health, a.health) = a.health
      and (i.no_interval or i.interval_s = a.heartbeat_interval_s)
  ),
  -- agent_state_json's delivery, for the whole batch: each agent's oldest stop or restart not yet done
  wish as (
    select distinct on (c.agent_id) c.id from public.agent_commands c
    where c.agent_id in (select agent_id from steady) and c.via_heartbeat
      and (c.status = 'claimed' or (c.status = 'pending' and c.expires_at > now()))
    order by c.agent_id, c.id
  ),
  delivered as (
    update public.agent_commands c set status = 'claimed', claimed_at = coalesce(c.claimed_at, now())
    from wish where c.id = wish.id
    returning c.agent_id, c.id, c.action
  ),
  applied as (
    update public.agent_status a set
      last_heartbeat = now(),
      updated_at = now(),
      pid = coalesce(i.pid, a.pid),
      -- a health equal to the one stored is steady, and is still a report (apply_event's rule)
      health_reported_at = case when i.health is not null then now() else a.health_reported_at end,
      last_activity = coalesce(i.activity, a.last_activity),
      last_activity_at = case when i.activity is not null then now() else a.last_activity_at end,
      restart_times = case when cardinality(a.restart_times) = 0 then a.restart_times
                           else agent_private.recent_restarts(a.restart_times) end,
      stale_at = now() + make_interval(secs => i.heartbeat_timeout_s),
      inactive_at = agent_private.activity_deadline(i.activity_timeout_s, a.status = 'warning' and a.status_source = 'sweep',
        a.inactive_at, case when i.activity is not null then now() else a.last_activity_at end, i.activity is not null)
    from steady i
    where a.id = i.agent_id
    returning i.n, i.token_id, i.last_used_at, a.id, a as agent
  ),
  used as (
    update public.api_tokens t set last_used_at = now()
    where t.id in (select token_id from applied where last_used_at is null or last_used_at < now() - interval '1 minute')
  )
  select applied.n, agent_private.agent_state_answer(applied.agent,
           (select jsonb_build_object('action', d.action, 'command_id', d.id) from delivered d where d.agent_id = applied.id))
  from applied;
end
$$;

create function public.agent_report(
  p_token text,
  p_agent_name text,
  p_event text,
  p_message text default null,
  p_health integer default null,
  p_activity text default null,
  p_pid integer default null,
  p_exit_code integer default null,
  p_exit_signal text default null,
  p_details jsonb default null,
  p_at timestamptz default null,
  p_heartbeat_interval_s integer default null,
  p_report_id uuid default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who record;
  agent_events constant text[] := array['started', 'stopped', 'running', 'warning', 'error', 'activity', 'heartbeat'];
  runner_events constant text[] := array['adopted', 'exited', 'crashed', 'terminated', 'stable'];
  v_agent public.agent_status;
begin
  if p_event is null or not (p_event = any (agent_events || runner_events)) then
    perform agent_private.invalid(format('event must be one of %s, got %s',
      array_to_string(agent_events || runner_events, ', '), coalesce(quote_literal(p_event), 'nothing')));
  end if;
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('message', p_message, 4000);
  perform agent_private.check_text('activity', p_activity, 1000);
  if p_details is not null and (jsonb_typeof(p_details) <> 'object' or pg_column_size(p_details) > 8192) then
    perform agent_private.invalid('details must be a JSON object of at most 8 kB');
  end if;
  -- (parenthesised: PL/pgSQL ends an IF condition at the first THEN outside parentheses)
  if p_details -> 'restart_in_s' is not null and (case when jsonb_typeof(p_details -> 'restart_in_s') = 'number'
     then (p_details ->> 'restart_in_s')::numeric not between 0 and 86400 else true end) then
    perform agent_private.invalid('details.restart_in_s must be a number of seconds between 0 and 86400');
  end if;
  if p_exit_signal is not null and p_exit_signal !~ '^SIG[A-Z0-9]{1,12}$' then
    perform agent_private.invalid(format('exit_signal must be a signal name like SIGTERM, got %L', p_exit_signal));
  end if;
  if p_event in ('warning', 'error') and nullif(btrim(p_message), '') is null then
    perform agent_private.invalid(format('a %s report needs a message saying what is wrong', p_event));
  end if;
  if p_event = 'activity' and p_activity is null then
    perform agent_private.invalid('an activity report needs activity: what the agent is doing now');
  end if;
  if p_heartbeat_interval_s is not null and (p_heartbeat_interval_s < 1 or p_heartbeat_interval_s > 86400) then
    perform agent_private.invalid(format('heartbeat_interval_s must be between 1 and 86400 seconds, got %s', p_heartbeat_interval_s));
  end if;

  who := agent_private.authorize_agent(p_token, p_agent_name);
  if p_event = any (runner_events) and who.source <> 'runner' then
    perform agent_private.invalid(format('%s is reported by the runner that supervises the process', p_event));
  end if;
  -- A report sent again (its sender never got the first answer) changes nothing the second time. A
  -- retry racing its original waits on the key, then finds it.
  if p_report_id is not null then
    insert into agent_private.applied_reports (agent_id, report_id) values (who.agent_id, p_report_id) on conflict do nothing;
    if not found then
      return (select a from public.agent_status a where a.id = who.agent_id);
    end if;
  end if;

  v_agent := agent_private.apply_event(who.agent_id, p_event, who.source, who.actor,
    p_health => p_health, p_message => p_message, p_activity => p_activity, p_pid => p_pid,
    p_exit_code => p_exit_code, p_exit_signal => p_exit_signal, p_details => p_details, p_at => p_at,
    p_heartbeat_interval_s => p_heartbeat_interval_s);
  if p_event in ('stopped', 'started') then
    perform agent_private.complete_delivered_commands(who.agent_id, p_event);
  end if;
  return v_agent;
end
$$;

-- `agent-status reset <agent>` (pm2 reset): forgets the restarts and crashes counted, so an agent
-- whose crash loop was fixed stops reading "12 restarts (crash loop)". It ends the crash loop too: the
-- loop is counted from crash_times (agent_private.crash_looping), and a reset that left them kept the
-- badge, `list` and the folded history row of a loop the operator had just declared over (issue 19).
-- Only the counters: its status, history and the crashes' events stay; the reset is an event of its
-- own with the counts it cleared and whether it ended a loop.
create function public.reset_agent_restarts(p_agent_name text, p_operator_token text default null)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a public.agent_status;
begin
  select * into a from public.agent_status
  where agent_name = agent_private.check_agent_name(p_agent_name) and archived_at is null
  for update;
  if a.id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  update public.agent_status set restarts_total = 0, restart_times = '{}', crash_times = '{}', crash_loop_event_id = null,
    updated_at = now()
  where id = a.id;
  insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
  values (a.id, a.runner_id, 'restarts_reset', 'operator', who,
          format('restart count reset by %s (was %s)', who, a.restarts_total)
            || case when agent_private.crash_looping(a) then format('; crash loop ended (%s crashes in 10 min)',
                 cardinality(agent_private.recent_restarts(a.crash_times))) else '' end,
          jsonb_build_object('restarts_total', a.restarts_total, 'restart_times', to_jsonb(a.restart_times),
                             'crash_times', to_jsonb(a.crash_times), 'crash_loop_ended', agent_private.crash_looping(a)));
  return jsonb_build_object('agent_name', a.agent_name, 'restarts_total', a.restarts_total,
                            'crash_loop_ended', agent_private.crash_looping(a));
end
$$;

create function public.archive_agent(p_agent_name text, p_operator_token text default null)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a public.agent_status;
  v_name text;
  n_tokens integer;
  n_commands integer;
begin
  select * into a from public.agent_status
  where agent_name = agent_private.check_agent_name(p_agent_name) and archived_at is null
  for update;
  if a.id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  if a.status in ('running', 'warning') and a.stale_at > now() then
    perform agent_private.refuse('55000', format('agent %L is %s; stop it before archiving it', a.agent_name, a.status),
      format('agent-status stop %s, then archive it (and remove it from its runner''s config).', a.agent_name));
  end if;

  v_name := format('%s [archived %s]', left(a.agent_name, 100 - char_length(format(' [archived %s]', a.id))), a.id);
  update public.agent_status set
    archived_at = now(), agent_name = v_name, runner_id = null, stale_at = null, inactive_at = null, updated_at = now()
  where id = a.id;
  update public.api_tokens set revoked_at = now() where agent_id = a.id and revoked_at is null;
  get diagnostics n_tokens = row_count;
  update public.agent_commands set status = 'failed', finished_at = now(), result = format('the agent was archived by %s', who)
  where agent_id = a.id and status in ('pending', 'claimed');
  get diagnostics n_commands = row_count;
  insert into public.agent_events (agent_id, kind, source, actor, from_status, to_status, message, details)
  values (a.id, 'archived', 'operator', who, a.status, a.status, format('%s archived by %s', a.agent_name, who),
          jsonb_build_object('agent_name', a.agent_name, 'archived_as', v_name, 'tokens_revoked', n_tokens,
                             'commands_failed', n_commands));
  return jsonb_build_object('agent_id', a.id, 'agent_name', a.agent_name, 'archived_as', v_name,
                            'tokens_revoked', n_tokens, 'commands_failed', n_commands);
end
$$;

create or replace function public.force_agent_status(
  p_agent_name text,
  p_status text,
  p_health integer default null,
  p_reason text default null,
  p_operator_token text default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  v_status public.agent_status_value;
  v_agent_id integer;
begin
  v_status := agent_private.check_status(p_status, array['running', 'warning', 'error', 'stopped']);
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('reason', p_reason, 4000);
  select id into v_agent_id from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name);
  if v_agent_id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  return agent_private.apply_event(v_agent_id, 'force', 'operator', who, p_forced => v_status,
    p_health => p_health, p_message => coalesce(p_reason, format('forced to %s by %s', v_status, who)));
end
$$;

-- Sets an agent's heartbeat and activity timeouts, in seconds: null leaves one as it is, 0 gives it
-- back to the runner's config, the declared interval or the default. Recorded as a `timeouts_set`
-- event; the deadlines move at once (an agent already silent for longer reads stale at once).
create or replace function public.set_agent_timeouts(
  p_agent_name text,
  p_heartbeat_timeout_s integer default null,
  p_activity_timeout_s integer default null,
  p_operator_token text default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a public.agent_status;
  s public.agent_status_settings;
  hb integer;
  act integer;
begin
  if p_heartbeat_timeout_s is not null and p_heartbeat_timeout_s <> 0 and p_heartbeat_timeout_s not between 5 and 86400 then
    perform agent_private.invalid(format('heartbeat timeout must be 5..86400 seconds (0: back to the default), got %s', p_heartbeat_timeout_s));
  end if;
  if p_activity_timeout_s is not null and p_activity_timeout_s <> 0 and p_activity_timeout_s not between 10 and 604800 then
    perform agent_private.invalid(format('activity timeout must be 10..604800 seconds (0: back to the default), got %s', p_activity_timeout_s));
  end if;
  if p_heartbeat_timeout_s is null and p_activity_timeout_s is null then
    perform agent_private.invalid('give a heartbeat timeout, an activity timeout, or both');
  end if;
  select * into a from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name) for update;
  if a.id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  select * into s from public.agent_status_settings;
  if p_heartbeat_timeout_s is not null then
    a.operator_heartbeat_timeout_s := nullif(p_heartbeat_timeout_s, 0);
  end if;
  if p_activity_timeout_s is not null then
    a.operator_activity_timeout_s := nullif(p_activity_timeout_s, 0);
  end if;
  hb := (agent_private.heartbeat_timeout(a, s)).timeout_s;
  act := agent_private.activity_timeout(a, s);
  update public.agent_status set
    operator_heartbeat_timeout_s = a.operator_heartbeat_timeout_s,
    operator_activity_timeout_s = a.operator_activity_timeout_s,
    stale_at = case when stale_at is not null then coalesce(last_heartbeat, now()) + make_interval(secs => hb) end,
    inactive_at = case when inactive_at is not null and act is not null
                       then coalesce(last_activity_at, started_at, now()) + make_interval(secs => act) end,
    updated_at = now()
  where id = a.id
  returning * into a;
  insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
  values (a.id, a.runner_id, 'timeouts_set', 'operator', who,
          format('heartbeat timeout %s s, activity timeout %s', hb, coalesce(act || ' s', 'none')),
          jsonb_build_object('heartbeat_timeout_s', hb, 'activity_timeout_s', act,
                             'operator_heartbeat_timeout_s', a.operator_heartbeat_timeout_s,
                             'operator_activity_timeout_s', a.operator_activity_timeout_s));
  return a;
end
$$;
