-- Alerts: channels, rules, pauses, the outbox filled by a trigger on agent_events, incidents, and the operator functions.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.
--
-- How the rules read the truth:
--  - A crash loop is a flip of its own: the `crashed` event that apply_event marks details.crash_loop
--    (the second crash before the agent was stable again). A channel that listens to `crash_loop`
--    gets one "crash-looping" notice per incident, on top of the first crash's "down" notice.
--  - A restart after a crash reads `warning` until the runner reports it `stable`, so leaving
--    `error` is no longer a recovery: an incident ends when the agent reads `running` again (or is
--    `stopped` on purpose), whatever it read in between. Before, every restart of a crash loop told a
--    recovery and the next crash a new "down".
--  - A runner is silent after two of its own heartbeat intervals (agent_private.runner_silent_after),
--    as the sweep now judges it; folding agents under their host uses the same rule.
--  - Channels listen to crash loops by default.

-- One row of settings for the outbox; only the dispatcher and the service role need them.
create table public.alert_settings (
  id boolean primary key default true check (id),
  -- a failing delivery is retried for this long after it was queued, then marked dead
  retry_window_s integer not null default 3600 check (retry_window_s between 5 and 604800),
  -- first retry after about this long, doubling each time, never more than backoff_max_s
  backoff_base_s integer not null default 10 check (backoff_base_s between 1 and 3600),
  backoff_max_s integer not null default 600 check (backoff_max_s between 1 and 86400),
  -- a claimed delivery whose dispatcher neither finished nor failed it is claimable again after this
  lease_s integer not null default 60 check (lease_s between 5 and 3600),
  -- finished deliveries (and their attempts) are kept this long
  retention interval not null default '30 days' check (retention >= interval '1 hour')
);

insert into public.alert_settings default values;

-- Where notifications go, and the rules that decide which flips reach it. The endpoint and the secret
-- are secrets (a Slack or Discord webhook URL is a credential on its own): operators write them and
-- read them back only masked (operator_alert_channels); only the dispatcher reads them whole.
create table public.alert_channels (
  id uuid primary key default gen_random_uuid(),
  name text not null unique
    check (char_length(name) between 1 and 100 and name !~ '[[:cntrl:]]' and name = btrim(name)),
  kind text not null check (kind in ('webhook', 'slack', 'discord', 'telegram', 'ntfy', 'email', 'pagerduty')),
  endpoint text not null check (endpoint ~ '^https?://[^[:space:]]+$' and char_length(endpoint) <= 2000),
  secret text check (char_length(secret) <= 4000),
  -- per-kind options that are not secret: telegram chat_id, ntfy topic and priority, email provider,
  -- from and to, webhook extra headers are not supported on purpose (put a token in the secret)
  settings jsonb not null default '{}' check (jsonb_typeof(settings) = 'object' and pg_column_size(settings) <= 4096),
  enabled boolean not null default true,
  -- Rules. Which down flips are told (recovery is always told once a down notice went out).
  flips text[] not null default array['stale', 'error', 'crash_loop', 'host']
    check (flips <@ array['stale', 'error', 'crash_loop', 'host']),
  -- Which agents: null means all; hosts by exact name, agent names by glob pattern (* and ?).
  hosts text[] check (cardinality(hosts) between 1 and 100),
  agent_patterns text[] check (cardinality(agent_patterns) between 1 and 100),
  -- Alert only when still down after this long; a recovery within it cancels the notice silently.
  grace_s integer not null default 0 check (grace_s between 0 and 86400),
  -- Remind while still down, every this long (null: never).
  reminder_s integer check (reminder_s between 60 and 604800),
  -- This many down flips of one agent within flap_window_s make one "flapping" notice instead of
  -- one per flip (0: never fold).
  flap_threshold integer not null default 3 check (flap_threshold = 0 or flap_threshold between 2 and 100),
  flap_window_s integer not null default 600 check (flap_window_s between 10 and 86400),
  created_at timestamptz not null default now(),
  created_by text check (char_length(created_by) <= 200),
  updated_at timestamptz not null default now()
);

-- The outbox: one row per notification and channel. subject says what it is about (agent:<id>,
-- host:<runner id>, test:<channel>); deliveries of one subject on one channel leave in order, so a
-- recovery never overtakes its down notice.
create table public.alert_deliveries (
  id bigint generated always as identity primary key,
  channel_id uuid not null references public.alert_channels (id) on delete cascade,
  -- the flip that caused it (null for tests, reminders and notices made by the clock)
  event_id bigint references public.agent_events (id) on delete set null,
  agent_id integer references public.agent_status (id) on delete cascade,
  runner_id uuid references public.runners (id) on delete cascade,
  subject text not null check (char_length(subject) <= 100),
  kind text not null check (kind in ('down', 'up', 'flapping', 'reminder', 'host_down', 'host_up', 'test')),
  -- the neutral "what happened" object every channel builds its own payload from
  notice jsonb not null,
  status text not null default 'pending' check (status in ('pending', 'sending', 'delivered', 'dead', 'cancelled')),
  due_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  attempts integer not null default 0,
  locked_by text check (char_length(locked_by) <= 200),
  locked_until timestamptz,
  last_http_status integer,
  last_error text check (char_length(last_error) <= 1000),
  finished_at timestamptz,
  check ((status in ('delivered', 'dead', 'cancelled')) = (finished_at is not null)),
  check (status <> 'sending' or locked_until is not null)
);

create index alert_deliveries_agent_idx on public.alert_deliveries (agent_id) where agent_id is not null;

create index alert_deliveries_channel_idx on public.alert_deliveries (channel_id, id desc);

create index alert_deliveries_due_idx on public.alert_deliveries (due_at) where status = 'pending';

-- One delivery per flip per channel, whoever writes it.
create unique index alert_deliveries_event_channel_idx on public.alert_deliveries (event_id, channel_id)
  where event_id is not null and kind in ('down', 'up', 'flapping', 'host_down', 'host_up');

-- The sweep prunes agent_events in batches of up to 10,000; each deleted event sets event_id to null
-- in alert_deliveries (on delete set null), and deleting an agent cascades to its deliveries. The only
-- index on event_id was the partial unique one (kind in ...), which those lookups cannot use, so each
-- of them scanned the whole outbox. Plain indexes for both foreign keys (tests/alerts/rules.test.ts,
-- "pruning history ...").
create index alert_deliveries_event_idx on public.alert_deliveries (event_id) where event_id is not null;

create index alert_deliveries_finished_idx on public.alert_deliveries (finished_at) where finished_at is not null;

create index alert_deliveries_lease_idx on public.alert_deliveries (locked_until) where status = 'sending';

create index alert_deliveries_open_idx on public.alert_deliveries (channel_id, subject, id) where status in ('pending', 'sending');

-- Every attempt to send a delivery: when, how long, what came back.
create table public.alert_attempts (
  id bigint generated always as identity primary key,
  delivery_id bigint not null references public.alert_deliveries (id) on delete cascade,
  at timestamptz not null default now(),
  dispatcher text check (char_length(dispatcher) <= 200),
  duration_ms integer,
  http_status integer,
  -- the start of the receiver's answer, bounded: enough to see why it refused
  response text check (char_length(response) <= 500),
  error text check (char_length(error) <= 1000),
  ok boolean not null
);

create index alert_attempts_delivery_idx on public.alert_attempts (delivery_id, id);

-- Snooze and maintenance: no notices for an agent or a host until a time (null: until resumed).
-- Flips during a pause are recorded (agent_events) but not sent; ended_at is set when the pause is
-- over and its catch-up is done (a still-down agent alerts then).
create table public.alert_pauses (
  id bigint generated always as identity primary key,
  agent_id integer references public.agent_status (id) on delete cascade,
  host text check (char_length(host) between 1 and 255),
  check ((agent_id is null) <> (host is null)),
  until timestamptz,
  reason text check (char_length(reason) <= 500),
  created_by text check (char_length(created_by) <= 200),
  created_at timestamptz not null default now(),
  ended_at timestamptz
);

create index alert_pauses_open_idx on public.alert_pauses (agent_id, host) where ended_at is null;

-- What each channel last told about each agent or host: whether a down notice is out (so its
-- recovery is told), the pending notice a recovery within the grace delay cancels, recent down flips
-- for flap folding, and the incident key PagerDuty deduplicates on. Private: the rules' memory.
create table agent_private.alert_states (
  channel_id uuid not null references public.alert_channels (id) on delete cascade,
  subject text not null,
  agent_id integer references public.agent_status (id) on delete cascade,
  runner_id uuid references public.runners (id) on delete cascade,
  down_since timestamptz,
  down_delivery_id bigint,
  -- a down (or flapping, or host) notice went out or is queued past its grace: recovery must be told
  notified boolean not null default false,
  -- folded into its host's "host silent" notice: the host's recovery tells it
  folded boolean not null default false,
  incident text,
  last_notified_at timestamptz,
  recent_downs timestamptz[] not null default '{}',
  flapping_until timestamptz,
  -- this incident's crash loop was told (once per incident)
  crash_loop_told boolean not null default false,
  primary key (channel_id, subject)
);

create index alert_states_down_idx on agent_private.alert_states (last_notified_at) where notified and down_since is not null;

create index alert_states_flapping_idx on agent_private.alert_states (flapping_until) where flapping_until is not null;

-- Whether a channel's rules cover this agent (by its host and name) for this kind of flip.
create function agent_private.alert_channel_matches(
  c public.alert_channels, p_flip text, p_agent_name text, p_host text
) returns boolean
  language sql stable set search_path = ''
as $$
  select c.enabled
     and (p_flip is null or p_flip = any (c.flips))
     and (c.hosts is null or p_host = any (c.hosts))
     and (c.agent_patterns is null or p_agent_name is null
          or exists (select 1 from unnest(c.agent_patterns) g where p_agent_name like agent_private.glob_to_like(g)))
$$;

-- Whether an operator paused alerts for this agent (directly or through its host) right now.
create function agent_private.alerts_paused(p_agent_id integer, p_host text) returns boolean
  language sql stable set search_path = ''
as $$
  select exists (
    select 1 from public.alert_pauses p
    where p.ended_at is null and (p.until is null or p.until > now())
      and (p.agent_id = p_agent_id or (p_host is not null and p.host = p_host)))
$$;

-- The neutral "what happened" object. Wording lives here, once; channels only lay it out.
create function agent_private.alert_notice(
  p_kind text,
  p_agent public.agent_status,
  p_host text,
  p_status text,
  p_previous text,
  p_reason text,
  p_at timestamptz,
  p_incident text,
  p_agents integer default null,
  p_extra jsonb default '{}'
) returns jsonb
  language sql stable set search_path = ''
as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'kind', p_kind,
    'severity', case p_kind when 'down' then 'critical' when 'host_down' then 'critical' when 'reminder' then 'critical'
                            when 'flapping' then 'warning' when 'test' then 'info' else 'resolved' end,
    'title', case p_kind
      when 'down' then format('%s is down: %s', p_agent.agent_name, p_status)
      when 'up' then format('%s recovered: %s', p_agent.agent_name, p_status)
      when 'flapping' then format('%s is flapping', p_agent.agent_name)
      when 'reminder' then format('%s is still down: %s', p_agent.agent_name, p_status)
      when 'host_down' then format('host %s is %s: %s agents', p_host,
                                   case p_status when 'stopped' then 'stopped, its agents unwatched' else 'silent' end, p_agents)
      when 'host_up' then format('host %s is back: %s agents', p_host, p_agents)
      when 'test' then 'agent-status test notification'
    end,
    'text', coalesce(p_reason, case p_kind
      when 'down' then format('status %s (was %s)', p_status, p_previous)
      when 'up' then format('status %s (was %s)', p_status, p_previous)
      when 'host_down' then format('the runner on %s stopped answering; its agents are not reported on one by one', p_host)
      when 'host_up' then format('the runner on %s answers again', p_host)
      when 'test' then 'If you can read this, the channel works.'
    end),
    'agent', p_agent.agent_name,
    'host', coalesce(p_host, p_agent.host),
    'status', p_status,
    'previous_status', p_previous,
    'agents', p_agents,
    'at', p_at,
    'incident', p_incident
  ) || p_extra)
$$;

-- Queues one delivery; returns its id. pg_notify nudges a listening dispatcher (the local stack's
-- timer) to run at once; the statement trigger below does the same with pg_net on Supabase.
create function agent_private.alert_enqueue(
  p_channel uuid, p_event_id bigint, p_agent_id integer, p_runner_id uuid, p_subject text, p_kind text,
  p_notice jsonb, p_due_at timestamptz default now()
) returns bigint
  language plpgsql set search_path = ''
as $$
declare
  v_id bigint;
begin
  insert into public.alert_deliveries (channel_id, event_id, agent_id, runner_id, subject, kind, notice, due_at)
  values (p_channel, p_event_id, p_agent_id, p_runner_id, p_subject, p_kind, p_notice, p_due_at)
  on conflict do nothing
  returning id into v_id;
  if v_id is not null then
    perform pg_notify('agent_status_alerts', '');
  end if;
  return v_id;
end
$$;

-- The state row of (channel, subject), created empty when missing, locked for this transaction.
create function agent_private.alert_state(p_channel uuid, p_subject text, p_agent_id integer, p_runner_id uuid)
  returns agent_private.alert_states
  language plpgsql set search_path = ''
as $$
declare
  s agent_private.alert_states;
begin
  insert into agent_private.alert_states (channel_id, subject, agent_id, runner_id)
  values (p_channel, p_subject, p_agent_id, p_runner_id)
  on conflict do nothing;
  select * into s from agent_private.alert_states where channel_id = p_channel and subject = p_subject for update;
  return s;
end
$$;

-- What an agent reads, in the words a host's recovery uses for it, and how bad that is (0 worst).
create function agent_private.agent_health_word(l public.agent_status_live) returns text
  language sql stable set search_path = ''
as $$
  select case when l.crash_looping then 'crash-looping' when l.status = 'stale' then 'not checked yet' else l.status::text end
$$;

create function agent_private.agent_health_rank(l public.agent_status_live) returns integer
  language sql stable set search_path = ''
as $$
  select case when l.crash_looping or l.status = 'error' then 0 when l.status = 'warning' then 1
              when l.status = 'stale' then 2 when l.status = 'stopped' then 3 else 4 end
$$;

-- An agent (or a host, p_agent null) is no longer down on one channel. A recovery is told whenever a
-- down notice went out; one still waiting out its grace delay is cancelled instead, silently.
create function agent_private.alert_recovered(
  c public.alert_channels, p_subject text, a public.agent_status, r public.runners, p_event_id bigint,
  p_status text, p_previous text, p_reason text
) returns void
  language plpgsql set search_path = ''
as $$
declare
  s agent_private.alert_states;
  cancelled integer;
  n integer;
  summary text;
  each_agent text;
  not_well boolean;
begin
  select * into s from agent_private.alert_states where channel_id = c.id and subject = p_subject for update;
  if not found or s.down_since is null then
    return;
  end if;
  if s.flapping_until is not null then
    -- alert_tick tells how the flapping ended once the agent is stable
    update agent_private.alert_states set down_since = null where channel_id = c.id and subject = p_subject;
    return;
  end if;
  update agent_private.alert_states set down_since = null, notified = false, folded = false, down_delivery_id = null
  where channel_id = c.id and subject = p_subject;
  if s.folded or not s.notified then
    return;  -- folded into its host's notice, or never told (paused): nothing to take back
  end if;
  update public.alert_deliveries set status = 'cancelled', finished_at = now(),
    last_error = 'recovered within the grace delay; not sent'
  where id = s.down_delivery_id and status = 'pending' and attempts = 0 and due_at > now();
  get diagnostics cancelled = row_count;
  if cancelled > 0 then
    return;
  end if;
  if r.id is not null then
    -- The host is back; its agents need not be (issue 19: "is back: 2 agents ✅" while one of them
    -- was crash-looping). The notice says what is true of each, now: the title counts them by what
    -- they read, the text names each one. One not heard of since the silence reads "not checked yet":
    -- its new runner relays it, or reports its crash, in the next seconds, and that flip is told.
    select sum(n_agents)::integer,
           string_agg(format('%s %s', n_agents, word), ', ' order by worst, word),
           bool_or(worst < 2)
      into n, summary, not_well
    from (select agent_private.agent_health_word(l) as word, min(agent_private.agent_health_rank(l)) as worst, count(*) as n_agents
          from public.agent_status_live l where l.runner_id = r.id group by 1) g;
    select left(string_agg(format('%s %s', l.agent_name, agent_private.agent_health_word(l)), ', '
                           order by agent_private.agent_health_rank(l), l.agent_name), 1500)
      into each_agent
    from public.agent_status_live l where l.runner_id = r.id;
    perform agent_private.alert_enqueue(c.id, p_event_id, null, r.id, p_subject, 'host_up',
      agent_private.alert_notice('host_up', null, r.host, 'online', 'offline',
        left(concat_ws('; ', coalesce(p_reason, format('the runner on %s answers again', r.host)), each_agent), 2000),
        now(), s.incident, n,
        p_extra => jsonb_build_object('title', format('host %s is back: %s agents', r.host, coalesce(n, 0))
                                               || coalesce(' (' || summary || ')', ''))
                    || case when not_well then jsonb_build_object('severity', 'warning') else '{}' end));
  else
    perform agent_private.alert_enqueue(c.id, p_event_id, a.id, null, p_subject, 'up',
      agent_private.alert_notice('up', a, null, p_status, p_previous, p_reason, now(), s.incident));
  end if;
end
$$;

-- Everything the clock decides. Runs before each claim (so the dispatcher's schedule is its clock),
-- at most one at a time; a second caller skips it.
create function agent_private.alert_tick() returns void
  language plpgsql set search_path = ''
as $$
declare
  st record;
  p public.alert_pauses;
  settings public.alert_settings;
  a public.agent_status;
  live_status text;
  v_incident text;
begin
  if not pg_try_advisory_xact_lock(hashtext('agent_status_alert_tick')) then
    return;
  end if;
  select * into settings from public.alert_settings;

  -- Pauses whose time is up.
  for p in select * from public.alert_pauses where ended_at is null and until <= now() order by id loop
    perform agent_private.alert_pause_end(p, 'clock');
  end loop;

  -- Flapping that calmed down: one notice saying how it ended.
  for st in
    select s.*, c.flap_window_s from agent_private.alert_states s join public.alert_channels c on c.id = s.channel_id
    where s.flapping_until <= now() for update of s skip locked
  loop
    select * into a from public.agent_status where id = st.agent_id;
    select l.status into live_status from public.agent_status_live l where l.id = st.agent_id;
    v_incident := st.incident;
    if live_status in ('stale', 'error') then
      -- paused: not told now (the pause's end tells it); a flapping notice already out stays open
      -- under its key, and the recovery resolves it
      if not agent_private.alerts_paused(a.id, a.host) then
        perform agent_private.alert_enqueue(st.channel_id, null, a.id, null, st.subject, 'down',
          agent_private.alert_notice('down', a, null, live_status, null, 'stopped flapping, and is down', now(), v_incident));
      end if;
      update agent_private.alert_states set flapping_until = null, recent_downs = '{}', down_since = coalesce(down_since, now()),
        notified = st.notified or not agent_private.alerts_paused(a.id, a.host), last_notified_at = now()
      where channel_id = st.channel_id and subject = st.subject;
    else
      -- a told flapping incident always gets its recovery, paused or not (a snooze during flapping
      -- left PagerDuty's incident open for good: issue 19, case 8)
      if st.notified then
        perform agent_private.alert_enqueue(st.channel_id, null, a.id, null, st.subject, 'up',
          agent_private.alert_notice('up', a, null, live_status, null,
            format('stable again: no down flip for %s s', st.flap_window_s), now(), v_incident));
      end if;
      update agent_private.alert_states set flapping_until = null, recent_downs = '{}', down_since = null, notified = false
      where channel_id = st.channel_id and subject = st.subject;
    end if;
  end loop;

  -- Reminders while still down (only after the down notice itself was delivered).
  for st in
    select s.*, c.reminder_s from agent_private.alert_states s join public.alert_channels c on c.id = s.channel_id
    where c.enabled and c.reminder_s is not null and s.notified and s.down_since is not null and not s.folded
      and s.flapping_until is null and s.agent_id is not null
      and s.last_notified_at <= now() - make_interval(secs => c.reminder_s)
      and exists (select 1 from public.alert_deliveries d where d.id = s.down_delivery_id and d.status = 'delivered')
    for update of s skip locked
  loop
    select * into a from public.agent_status where id = st.agent_id;
    continue when agent_private.alerts_paused(a.id, a.host);
    perform agent_private.alert_enqueue(st.channel_id, null, a.id, null, st.subject, 'reminder',
      agent_private.alert_notice('reminder', a, null, a.status, null,
        format('down since %s', to_char(st.down_since, 'YYYY-MM-DD HH24:MI:SS TZ')), now(), st.incident));
    update agent_private.alert_states set last_notified_at = now() where channel_id = st.channel_id and subject = st.subject;
  end loop;

  -- Bounded history.
  delete from public.alert_deliveries where id in (
    select id from public.alert_deliveries where finished_at < now() - settings.retention order by finished_at limit 10000);
end
$$;

-- The default endpoint of each kind, for channels that talk to a public API.
create function agent_private.default_endpoint(p_kind text, p_settings jsonb) returns text
  language sql immutable set search_path = ''
as $$
  select case p_kind
    when 'telegram' then 'https://api.telegram.org'
    when 'ntfy' then 'https://ntfy.sh'
    when 'email' then case coalesce(p_settings ->> 'provider', 'resend')
                        when 'postmark' then 'https://api.postmarkapp.com/email' else 'https://api.resend.com/emails' end
    when 'pagerduty' then 'https://events.pagerduty.com/v2/enqueue'
  end
$$;

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

-- Channels as operators see them: secrets masked, rules, and the last delivery's result.
create function public.operator_alert_channels(p_operator_token text default null)
  returns table (name text, kind text, endpoint text, secret text, settings jsonb, enabled boolean, flips text[],
                 hosts text[], agents text[], grace_s integer, reminder_s integer, flap_threshold integer,
                 flap_window_s integer, last_delivery_id bigint, last_status text, last_kind text, last_at timestamptz,
                 last_http_status integer, last_error text, created_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  return query
  select c.name, c.kind,
         case when c.kind in ('slack', 'discord', 'webhook') then agent_private.mask_url(c.endpoint) else c.endpoint end,
         agent_private.mask(c.secret), c.settings, c.enabled, c.flips, c.hosts, c.agent_patterns, c.grace_s, c.reminder_s,
         c.flap_threshold, c.flap_window_s, d.id, d.status, d.kind, coalesce(d.finished_at, d.created_at),
         d.last_http_status, d.last_error, c.created_at
  from public.alert_channels c
  left join lateral (select * from public.alert_deliveries x where x.channel_id = c.id order by x.id desc limit 1) d on true
  order by c.name;
end
$$;

-- The delivery log, failures first (dead, then still retrying with an error), then newest first.
create function public.operator_alert_deliveries(
  p_channel text default null, p_limit integer default 100, p_operator_token text default null
) returns table (id bigint, channel text, kind text, status text, title text, agent text, host text, attempts integer,
                 created_at timestamptz, due_at timestamptz, finished_at timestamptz, last_http_status integer,
                 last_error text)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    perform agent_private.invalid(format('limit must be between 1 and 1000, got %s', p_limit));
  end if;
  return query
  select d.id, c.name, d.kind, d.status, d.notice ->> 'title', d.notice ->> 'agent', d.notice ->> 'host', d.attempts,
         d.created_at, d.due_at, d.finished_at, d.last_http_status, d.last_error
  from public.alert_deliveries d join public.alert_channels c on c.id = d.channel_id
  where p_channel is null or c.name = p_channel
  order by case when d.status = 'dead' then 0 when d.last_error is not null and d.status in ('pending', 'sending') then 1 else 2 end,
           d.id desc
  limit p_limit;
end
$$;

-- Ends the open pauses of an agent or a host now; a still-down agent alerts at once.
create function public.alert_resume(p_agent_name text default null, p_host text default null, p_operator_token text default null)
  returns integer
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  p public.alert_pauses;
  n integer := 0;
begin
  if (p_agent_name is null) = (p_host is null) then
    perform agent_private.invalid('name either one agent or one host to resume');
  end if;
  for p in
    select * from public.alert_pauses x
    where x.ended_at is null
      and (x.host = p_host or x.agent_id = (select id from public.agent_status where agent_name = p_agent_name))
    order by x.id for update
  loop
    perform agent_private.alert_pause_end(p, who);
    n := n + 1;
  end loop;
  return n;
end
$$;

-- One row per agent whose alerts are paused right now (directly or through its host): what the
-- dashboard shows as "paused" beside the agent. security_invoker: the reader's RLS applies.
create view public.agent_alerts_paused with (security_invoker = true) as
select distinct on (a.id)
  a.id as agent_id, a.agent_name, p.id as pause_id, p.host as paused_host, p.until as paused_until, p.reason,
  p.created_by as paused_by, p.created_at as paused_at
from public.alert_pauses p
join public.agent_status a on a.id = p.agent_id or (p.host is not null and a.host = p.host)
where p.ended_at is null and (p.until is null or p.until > now())
order by a.id, p.until desc nulls first;

-- Open pauses as operators with a token read them.
create function public.operator_alert_pauses(p_operator_token text default null)
  returns table (id bigint, agent_name text, host text, until timestamptz, reason text, created_by text, created_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  return query
  select p.id, a.agent_name, p.host, p.until, p.reason, p.created_by, p.created_at
  from public.alert_pauses p left join public.agent_status a on a.id = p.agent_id
  where p.ended_at is null and (p.until is null or p.until > now())
  order by p.created_at;
end
$$;

-- Incident keys were the subject plus the epoch second, so an agent that went down again within the
-- same second as its last incident (a fast crash loop) reused the old key, and PagerDuty folded the new
-- incident into the resolved one (tests/alerts/dispatch.test.ts, "one dedup key per incident"); and a
-- flapping notice reused the key of the incident before it. A key is now the subject plus a random
-- UUID, new for every incident (down, flapping or host silent), however fast they come.
create function agent_private.alert_incident_key(p_subject text) returns text
  language sql volatile set search_path = ''
as $$
  select p_subject || ':' || gen_random_uuid()
$$;

create or replace function agent_private.alert_host_down(c public.alert_channels, r public.runners, p_event_id bigint, p_reason text)
  returns void
  language plpgsql set search_path = ''
as $$
declare
  s agent_private.alert_states;
  n integer;
  v_incident text;
begin
  if agent_private.alerts_paused(null, r.host) then
    return;
  end if;
  s := agent_private.alert_state(c.id, 'host:' || r.id, null, r.id);
  if s.down_since is not null then
    return;
  end if;
  select count(*) into n from public.agent_status where runner_id = r.id;
  v_incident := agent_private.alert_incident_key('host:' || r.id);
  update agent_private.alert_states set down_since = now(), notified = true, incident = v_incident, last_notified_at = now(),
    down_delivery_id = agent_private.alert_enqueue(c.id, p_event_id, null, r.id, 'host:' || r.id, 'host_down',
      agent_private.alert_notice('host_down', null, r.host, case when r.status = 'stopped' then 'stopped' else 'offline' end,
        'online', p_reason, now(), v_incident, n),
      now() + make_interval(secs => c.grace_s))
  where channel_id = c.id and subject = 'host:' || r.id;
end
$$;

create or replace function agent_private.alert_agent_down(
  c public.alert_channels, a public.agent_status, p_flip text, p_event_id bigint, p_status text, p_previous text, p_reason text
) returns void
  language plpgsql set search_path = ''
as $$
declare
  subj constant text := 'agent:' || a.id;
  s agent_private.alert_states;
  r public.runners;
  downs timestamptz[];
  v_incident text;
begin
  s := agent_private.alert_state(c.id, subj, a.id, null);
  if s.down_since is not null and not s.folded and s.flapping_until is null then
    return;  -- already down (stale after error, say): one incident, one notice
  end if;

  -- Grouping by host: an agent whose runner is silent went silent with it. So does one left running
  -- by a runner that said goodbye (stopped: the goodbye itself pages no one, but the agents it left
  -- unwatched going stale is news, told once for the host, in words that say it was a stop).
  select * into r from public.runners where id = a.runner_id;
  if p_flip = 'stale' and r.id is not null and 'host' = any (c.flips)
     and (r.status = 'stopped' or agent_private.runner_silent(r.id)) then
    perform agent_private.alert_host_down(c, r, null,
      case when r.status = 'stopped'
           then format('the runner on %s was stopped %s s ago and left its agents running; nothing relays their heartbeats',
                       r.host, floor(extract(epoch from now() - coalesce(r.stopped_at, r.last_seen_at))))
           else format('the runner on %s stopped answering', r.host) end);
    update agent_private.alert_states set down_since = now(), folded = true where channel_id = c.id and subject = subj;
    return;
  end if;

  -- Flap folding: the Nth down flip within the window turns into one "flapping" notice, and further
  -- flips stay quiet until the agent has been stable for a whole window (alert_tick then tells how it ended).
  downs := array(select t from unnest(s.recent_downs || now()) t where t > now() - make_interval(secs => c.flap_window_s));
  if s.flapping_until is not null or (c.flap_threshold > 0 and cardinality(downs) >= c.flap_threshold) then
    if s.flapping_until is null and not agent_private.alerts_paused(a.id, a.host) then
      v_incident := agent_private.alert_incident_key(subj);
      perform agent_private.alert_enqueue(c.id, p_event_id, a.id, null, subj, 'flapping',
        agent_private.alert_notice('flapping', a, null, p_status, p_previous,
          format('%s down flips in %s s; further flips are not told until it is stable for %s s',
                 cardinality(downs), c.flap_window_s, c.flap_window_s), now(), v_incident));
      update agent_private.alert_states set notified = true, incident = v_incident, last_notified_at = now()
      where channel_id = c.id and subject = subj;
    end if;
    update agent_private.alert_states set recent_downs = downs, down_since = now(), folded = false,
      flapping_until = now() + make_interval(secs => c.flap_window_s)
    where channel_id = c.id and subject = subj;
    return;
  end if;

  if agent_private.alerts_paused(a.id, a.host) then
    -- recorded, not sent; the pause's end tells it if it is still down then
    update agent_private.alert_states set recent_downs = downs, down_since = now(), notified = false, folded = false
    where channel_id = c.id and subject = subj;
    return;
  end if;

  v_incident := agent_private.alert_incident_key('agent:' || a.id);
  update agent_private.alert_states set recent_downs = downs, down_since = now(), folded = false, notified = true,
    incident = v_incident, last_notified_at = now() + make_interval(secs => c.grace_s),
    down_delivery_id = agent_private.alert_enqueue(c.id, p_event_id, a.id, null, subj, 'down',
      agent_private.alert_notice('down', a, null, p_status, p_previous, p_reason, now(), v_incident),
      now() + make_interval(secs => c.grace_s))
  where channel_id = c.id and subject = subj;
end
$$;

create or replace function agent_private.alert_pause_end(p public.alert_pauses, p_actor text) returns void
  language plpgsql set search_path = ''
as $$
declare
  c public.alert_channels;
  a record;
  r public.runners;
  s agent_private.alert_states;
  v_incident text;
begin
  update public.alert_pauses set ended_at = now() where id = p.id and ended_at is null;
  if not found then
    return;
  end if;
  if p.agent_id is not null then
    insert into public.agent_events (agent_id, kind, source, actor, message, details)
    values (p.agent_id, 'alerts_resumed', 'operator', p_actor, 'alerts resumed', jsonb_build_object('pause_id', p.id));
  else
    select * into r from public.runners where host = p.host;
    insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
    select a2.id, r.id, 'alerts_resumed', 'operator', p_actor, format('alerts resumed for host %s', p.host),
           jsonb_build_object('pause_id', p.id, 'host', p.host)
    from public.agent_status a2 where a2.host = p.host or (r.id is not null and a2.runner_id = r.id)
    union all
    select null, r.id, 'alerts_resumed', 'operator', p_actor, format('alerts resumed for host %s', p.host),
           jsonb_build_object('pause_id', p.id, 'host', p.host)
    where r.id is not null;
  end if;

  for a in
    select l.id, l.status, l.status_reason, l.host from public.agent_status_live l
    where l.status in ('stale', 'error')
      and (l.id = p.agent_id or (p.host is not null and l.host = p.host))
      and not agent_private.alerts_paused(l.id, l.host)
  loop
    for c in select * from public.alert_channels ch
             where agent_private.alert_channel_matches(ch, a.status, (select agent_name from public.agent_status where id = a.id), a.host)
    loop
      s := agent_private.alert_state(c.id, 'agent:' || a.id, a.id, null);
      continue when s.notified;
      v_incident := agent_private.alert_incident_key('agent:' || a.id);
      update agent_private.alert_states set down_since = coalesce(down_since, now()), notified = true, incident = v_incident,
        last_notified_at = now(),
        down_delivery_id = agent_private.alert_enqueue(c.id, null, a.id, null, 'agent:' || a.id, 'down',
          agent_private.alert_notice('down', (select x from public.agent_status x where x.id = a.id), null, a.status, null,
            coalesce(a.status_reason, 'still down when the pause ended'), now(), v_incident,
            p_extra => jsonb_build_object('after_pause', true)))
      where channel_id = c.id and subject = 'agent:' || a.id;
    end loop;
  end loop;

  if p.host is not null and r.id is not null and agent_private.runner_silent(r.id) then
    for c in select * from public.alert_channels ch where agent_private.alert_channel_matches(ch, 'host', null, r.host) loop
      perform agent_private.alert_host_down(c, r, null, 'still silent when the pause ended');
    end loop;
  end if;
end
$$;

create or replace function agent_private.alert_flip(e public.agent_events) returns text
  language sql immutable set search_path = ''
as $$
  select case
    -- only a runner that went silent (persisted by the sweep) is a host incident; one that said
    -- goodbye (runner_offline from the runner itself, on SIGTERM) stopped on purpose (issue 19)
    when e.kind = 'runner_offline' and e.source = 'sweep' then 'host'
    when e.kind = 'runner_online' then 'host_up'
    when e.agent_id is null then null
    when e.kind = 'crashed' and (e.details ->> 'crash_loop')::boolean then 'crash_loop'
    when e.to_status is not distinct from e.from_status then null
    when e.to_status in ('stale', 'error') and coalesce(e.from_status, 'stopped') not in ('stale', 'error') then e.to_status
    -- found dead after a silence: told unless its own down notice is out already (alert_agent_down
    -- checks); a stale one folded under its host was "not checked yet" when the host came back
    when e.to_status = 'error' and e.from_status = 'stale' then 'error'
    when e.to_status in ('running', 'stopped') then 'agent_up'
  end
$$;

-- A crash loop on one channel: inside an incident already told, one "crash-looping" notice; otherwise
-- it opens the incident like any down flip.
create function agent_private.alert_crash_loop(c public.alert_channels, a public.agent_status, e public.agent_events)
  returns void
  language plpgsql set search_path = ''
as $$
declare
  subj constant text := 'agent:' || a.id;
  s agent_private.alert_states := agent_private.alert_state(c.id, subj, a.id, null);
begin
  if s.crash_loop_told then
    return;
  end if;
  if s.down_since is not null and s.notified and not s.folded and s.flapping_until is null
     and not agent_private.alerts_paused(a.id, a.host) then
    perform agent_private.alert_enqueue(c.id, e.id, a.id, null, subj, 'down',
      agent_private.alert_notice('down', a, null, e.to_status, e.from_status, e.message, now(), s.incident,
        p_extra => jsonb_build_object('crash_loop', true,
          'title', format('%s is crash-looping: %s restarts in 10 min', a.agent_name,
                          coalesce(e.details ->> 'restarts_10m', cardinality(a.restart_times)::text)))));
  elsif s.down_since is null then
    perform agent_private.alert_agent_down(c, a, 'crash_loop', e.id, e.to_status, e.from_status, e.message);
  end if;
  update agent_private.alert_states set crash_loop_told = true where channel_id = c.id and subject = subj;
end
$$;

-- Recovery is told on every channel that told the down, even when the channel's agent rules changed
-- since (an operator narrowing a filter during an incident left it open forever, and PagerDuty's
-- incident unresolved). The rules choose which downs are told; a told down always gets its recovery.
create or replace function agent_private.alerts_on_event() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  flip text := agent_private.alert_flip(new);
  c public.alert_channels;
  a public.agent_status;
  r public.runners;
begin
  if flip is null or not exists (select 1 from public.alert_channels where enabled) then
    return null;
  end if;
  if new.agent_id is not null then
    select * into a from public.agent_status where id = new.agent_id;
  end if;
  if new.runner_id is not null and new.agent_id is null then
    select * into r from public.runners where id = new.runner_id;
  end if;

  for c in select * from public.alert_channels where enabled order by id loop
    if flip in ('stale', 'error') then
      if agent_private.alert_channel_matches(c, flip, a.agent_name, a.host) then
        perform agent_private.alert_agent_down(c, a, flip, new.id, new.to_status, new.from_status, new.message);
      end if;
    elsif flip = 'crash_loop' then
      if agent_private.alert_channel_matches(c, flip, a.agent_name, a.host) then
        perform agent_private.alert_crash_loop(c, a, new);
      end if;
    elsif flip = 'agent_up' then
      -- no rule check: only a channel that told the down has an open incident to close
      perform agent_private.alert_recovered(c, 'agent:' || a.id, a, null, new.id, new.to_status, new.from_status, new.message);
      update agent_private.alert_states set crash_loop_told = false where channel_id = c.id and subject = 'agent:' || a.id;
    elsif flip = 'host' then
      if agent_private.alert_channel_matches(c, 'host', null, r.host) then
        perform agent_private.alert_host_down(c, r, new.id, new.message);
      end if;
    elsif flip = 'host_up' then
      perform agent_private.alert_recovered(c, 'host:' || r.id, null, r, new.id, 'online', 'offline', new.message);
      -- its agents' folded silence ended with it
      update agent_private.alert_states set down_since = null, folded = false
      where channel_id = c.id and folded and agent_id in (select id from public.agent_status where runner_id = r.id);
    end if;
  end loop;
  return null;
end
$$;

-- Every attempt to send the given deliveries, oldest first: when, how long, the HTTP status, the
-- error. The Alerts page lists them under each delivery (the delivery row keeps only the last).
create function public.operator_alert_attempts(p_delivery_ids bigint[], p_operator_token text default null)
  returns table (delivery_id bigint, at timestamptz, duration_ms integer, http_status integer, error text, ok boolean)
  language plpgsql stable security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  if cardinality(p_delivery_ids) > 1000 then
    perform agent_private.invalid(format('at most 1000 deliveries at a time, got %s', cardinality(p_delivery_ids)));
  end if;
  return query
  select a.delivery_id, a.at, a.duration_ms, a.http_status, a.error, a.ok
  from public.alert_attempts a
  where a.delivery_id = any (p_delivery_ids)
  order by a.delivery_id, a.id;
end
$$;

-- Sets a channel's rules; keys missing from p_rules keep their value, JSON null resets to "all"/"off".
create or replace function public.alert_channel_rules(p_name text, p_rules jsonb, p_operator_token text default null)
  returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  unknown text;
begin
  perform agent_private.require_operator(p_operator_token);
  if jsonb_typeof(p_rules) is distinct from 'object' then
    perform agent_private.invalid('rules must be a JSON object');
  end if;
  select string_agg(k, ', ') into unknown from jsonb_object_keys(p_rules) k
  where k not in ('enabled', 'flips', 'hosts', 'agents', 'grace_s', 'reminder_s', 'flap_threshold', 'flap_window_s');
  if unknown is not null then
    perform agent_private.invalid(format('unknown rule %s', unknown),
      'Rules: enabled, flips, hosts, agents, grace_s, reminder_s, flap_threshold, flap_window_s.');
  end if;
  update public.alert_channels c set
    enabled = case when p_rules ? 'enabled' then (p_rules ->> 'enabled')::boolean else c.enabled end,
    flips = case when p_rules ? 'flips' then array(select jsonb_array_elements_text(p_rules -> 'flips')) else c.flips end,
    hosts = case when p_rules ? 'hosts' then case when jsonb_typeof(p_rules -> 'hosts') = 'array'
              then array(select jsonb_array_elements_text(p_rules -> 'hosts')) end else c.hosts end,
    agent_patterns = case when p_rules ? 'agents' then case when jsonb_typeof(p_rules -> 'agents') = 'array'
              then array(select jsonb_array_elements_text(p_rules -> 'agents')) end else c.agent_patterns end,
    grace_s = case when p_rules ? 'grace_s' then coalesce((p_rules ->> 'grace_s')::integer, 0) else c.grace_s end,
    reminder_s = case when p_rules ? 'reminder_s' then (p_rules ->> 'reminder_s')::integer else c.reminder_s end,
    flap_threshold = case when p_rules ? 'flap_threshold' then coalesce((p_rules ->> 'flap_threshold')::integer, 0) else c.flap_threshold end,
    flap_window_s = case when p_rules ? 'flap_window_s' then (p_rules ->> 'flap_window_s')::integer else c.flap_window_s end,
    updated_at = now()
  where c.name = p_name;
  if not found then
    perform agent_private.refuse('P0002', format('no alert channel named %L', p_name),
      'List channels with: agent-status alerts channel list');
  end if;
exception
  when check_violation or not_null_violation or invalid_text_representation or numeric_value_out_of_range then
    perform agent_private.invalid(format('bad rules: %s', sqlerrm),
      'flips: stale, error, crash_loop, host; grace_s 0..86400; reminder_s 60..604800 or null; flap_threshold 0 or 2..100; flap_window_s 10..86400.');
end
$$;

create or replace function public.alert_channel_remove(p_name text, p_operator_token text default null) returns void
  language plpgsql security definer set search_path = ''
as $$
begin
  perform agent_private.require_operator(p_operator_token);
  delete from public.alert_channels where name = p_name;
  if not found then
    perform agent_private.refuse('P0002', format('no alert channel named %L', p_name),
      'List channels with: agent-status alerts channel list');
  end if;
end
$$;

-- Queues a test notice on a channel now; returns the delivery id to watch.
create or replace function public.alert_channel_test(p_name text, p_operator_token text default null) returns bigint
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  c public.alert_channels;
begin
  select * into c from public.alert_channels where name = p_name;
  if not found then
    perform agent_private.refuse('P0002', format('no alert channel named %L', p_name),
      'List channels with: agent-status alerts channel list');
  end if;
  return agent_private.alert_enqueue(c.id, null, null, null, 'test:' || c.id, 'test',
    agent_private.alert_notice('test', null, null, null, null, format('Sent by %s. If you can read this, the channel works.', who),
      now(), format('test:%s', gen_random_uuid())));
end
$$;

-- Pauses alerts for an agent or a host until a time (null: until resumed), with a reason.
create or replace function public.alert_pause(
  p_agent_name text default null, p_host text default null, p_until timestamptz default null, p_reason text default null,
  p_operator_token text default null
) returns bigint
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  v_agent integer;
  v_runner uuid;
  v_id bigint;
  msg text;
begin
  if (p_agent_name is null) = (p_host is null) then
    perform agent_private.invalid('name either one agent or one host to pause');
  end if;
  if p_until is not null and p_until <= now() then
    perform agent_private.invalid('the pause must end in the future', 'Give a later time, or no time to pause until resumed.');
  end if;
  perform agent_private.check_text('reason', p_reason, 500);
  if p_agent_name is not null then
    select id into v_agent from public.agent_status where agent_name = p_agent_name;
    if v_agent is null then
      perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
        'List agents with: agent-status list');
    end if;
  end if;
  insert into public.alert_pauses (agent_id, host, until, reason, created_by)
  values (v_agent, p_host, p_until, p_reason, who) returning id into v_id;
  msg := format('alerts paused %s%s', coalesce('until ' || to_char(p_until, 'YYYY-MM-DD HH24:MI:SS TZ'), 'until resumed'),
                coalesce(': ' || p_reason, ''));
  if v_agent is not null then
    insert into public.agent_events (agent_id, kind, source, actor, message, details)
    values (v_agent, 'alerts_paused', 'operator', who, msg, jsonb_build_object('pause_id', v_id, 'until', p_until, 'reason', p_reason));
  else
    select id into v_runner from public.runners where host = p_host;
    insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
    select a.id, v_runner, 'alerts_paused', 'operator', who, msg || format(' (host %s)', p_host),
           jsonb_build_object('pause_id', v_id, 'host', p_host, 'until', p_until, 'reason', p_reason)
    from public.agent_status a where a.host = p_host or (v_runner is not null and a.runner_id = v_runner)
    union all
    select null, v_runner, 'alerts_paused', 'operator', who, msg || format(' (host %s)', p_host),
           jsonb_build_object('pause_id', v_id, 'host', p_host, 'until', p_until, 'reason', p_reason)
    where v_runner is not null;
  end if;
  return v_id;
end
$$;

create trigger alerts_on_event
  after insert on public.agent_events
  for each row
  when
    (((new.kind = ANY (ARRAY['runner_offline'::text, 'runner_online'::text])) OR ((new.kind = 'crashed'::text) AND (new.details ? 'crash_loop'::text)) OR (((new.to_status)::text IS
    DISTINCT FROM (new.from_status)::text) AND ((new.to_status)::text = ANY (ARRAY['stale'::text, 'error'::text, 'running'::text, 'stopped'::text])))))
  execute function agent_private.alerts_on_event();
