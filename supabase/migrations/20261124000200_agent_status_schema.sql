-- The data. Tables are written only through the SQL functions of the next migrations; see
-- docs/state-machine.md for the statuses and the transitions between them.

create schema if not exists agent_private;
comment on schema agent_private is
  'Helpers of the agent-status SQL API. Not exposed through PostgREST; call the public functions.';

-- The one definition of the status values. shared/status.ts mirrors it and a test keeps the two equal.
create domain public.agent_status_value as text
  check (value in ('running', 'warning', 'error', 'stopped', 'stale'));

-- Who set the current status: an agent about itself, the runner that supervises it, the sweep
-- (which only ever infers: stale, or inactive), or an operator forcing it.
create domain public.agent_event_source as text
  check (value in ('agent', 'runner', 'sweep', 'operator'));

-- Settings live in one row so an operator can change retention or defaults without a migration.
create table public.agent_status_settings (
  id boolean primary key default true check (id),
  default_heartbeat_timeout_s integer not null default 120 check (default_heartbeat_timeout_s between 5 and 86400),
  default_activity_timeout_s integer default 900 check (default_activity_timeout_s between 10 and 604800),
  command_ttl_s integer not null default 120 check (command_ttl_s between 5 and 86400),
  claimed_command_timeout_s integer not null default 300 check (claimed_command_timeout_s between 10 and 86400),
  runner_offline_after_s integer not null default 90 check (runner_offline_after_s between 10 and 86400),
  event_retention interval not null default '30 days' check (event_retention >= interval '1 hour'),
  command_retention interval not null default '7 days' check (command_retention >= interval '1 hour'),
  cron_history_retention interval not null default '1 day' check (cron_history_retention >= interval '1 hour'),
  -- the sweep deletes at most this many rows of each kind per run, so one run stays short
  prune_batch integer not null default 10000 check (prune_batch between 100 and 1000000)
);
insert into public.agent_status_settings default values;

create table public.runners (
  id uuid primary key default gen_random_uuid(),
  host text not null unique
    check (char_length(host) between 1 and 255 and host !~ '[[:cntrl:]]' and host = btrim(host)),
  status text not null default 'online' check (status in ('online', 'offline')),
  version text check (char_length(version) <= 100),
  pid integer,
  started_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  stopped_at timestamptz,
  metadata jsonb not null default '{}' check (pg_column_size(metadata) <= 8192)
);

-- The seed's table, its columns as they were (id, agent_name, status, health, last_heartbeat,
-- last_error, last_activity, updated_at), then what the runner and the sweep need.
create table public.agent_status (
  id serial primary key,
  agent_name text not null unique
    check (char_length(agent_name) between 1 and 100
           and agent_name !~ '[[:cntrl:]]'
           and agent_name = btrim(agent_name)),
  status public.agent_status_value not null default 'stopped',
  health integer not null default 0 check (health between 0 and 100),
  last_heartbeat timestamptz,
  last_error text check (char_length(last_error) <= 4000),
  last_activity text check (char_length(last_activity) <= 1000),
  updated_at timestamptz not null default now(),

  status_source public.agent_event_source not null default 'operator',
  status_reason text check (char_length(status_reason) <= 4000),
  status_changed_at timestamptz not null default now(),
  runner_id uuid references public.runners (id) on delete set null,
  host text check (char_length(host) <= 255),
  pid integer check (pid > 0),
  started_at timestamptz,
  stopped_at timestamptz,
  exit_code integer,
  exit_signal text check (char_length(exit_signal) <= 20),
  last_activity_at timestamptz,
  heartbeat_timeout_s integer check (heartbeat_timeout_s between 5 and 86400),
  activity_timeout_s integer check (activity_timeout_s between 10 and 604800),
  -- Stored deadlines (healthchecks' alert_after): set on every heartbeat / activity of a live agent,
  -- null when the agent is not expected to speak. The sweep and the live view compare them with now().
  stale_at timestamptz,
  inactive_at timestamptz,
  metadata jsonb not null default '{}' check (pg_column_size(metadata) <= 8192),
  created_at timestamptz not null default now()
);
create index agent_status_stale_at_idx on public.agent_status (stale_at) where stale_at is not null;
create index agent_status_inactive_at_idx on public.agent_status (inactive_at) where inactive_at is not null;
create index agent_status_runner_idx on public.agent_status (runner_id) where runner_id is not null;
-- the dashboard's incremental reads: what changed since its last poll
create index agent_status_updated_at_idx on public.agent_status (updated_at);

-- Append-only history: one row per status flip, warning, error, command step, adoption, force-set.
create table public.agent_events (
  id bigint generated always as identity primary key,
  agent_id integer references public.agent_status (id) on delete cascade,
  runner_id uuid references public.runners (id) on delete set null,
  at timestamptz not null default now(),
  kind text not null check (kind ~ '^[a-z_]{1,40}$'),
  source public.agent_event_source not null,
  actor text check (char_length(actor) <= 200),
  from_status public.agent_status_value,
  to_status public.agent_status_value,
  health integer check (health between 0 and 100),
  message text check (char_length(message) <= 4000),
  details jsonb not null default '{}' check (pg_column_size(details) <= 16384),
  check (agent_id is not null or runner_id is not null)
);
create index agent_events_agent_at_idx on public.agent_events (agent_id, at desc);
create index agent_events_runner_at_idx on public.agent_events (runner_id, at desc) where runner_id is not null;
create index agent_events_at_idx on public.agent_events (at);

create table public.agent_commands (
  id bigint generated always as identity primary key,
  agent_id integer not null references public.agent_status (id) on delete cascade,
  action text not null check (action in ('start', 'stop', 'restart')),
  status text not null default 'pending'
    check (status in ('pending', 'claimed', 'succeeded', 'failed', 'expired')),
  requested_by text not null default 'unknown' check (char_length(requested_by) <= 200),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '2 minutes',
  claimed_at timestamptz,
  claimed_by uuid references public.runners (id) on delete set null,
  finished_at timestamptz,
  result text check (char_length(result) <= 4000),
  check (status <> 'claimed' or claimed_at is not null),
  check ((status in ('succeeded', 'failed', 'expired')) = (finished_at is not null))
);
create index agent_commands_pending_idx on public.agent_commands (agent_id, id) where status = 'pending';
create index agent_commands_pending_expiry_idx on public.agent_commands (expires_at) where status = 'pending';
create index agent_commands_claimed_idx on public.agent_commands (claimed_at) where status = 'claimed';
create index agent_commands_finished_idx on public.agent_commands (finished_at) where finished_at is not null;

-- Operators: signed-in users allowed to read the dashboard and send commands. Added by email so an
-- operator can be allowed before their first sign-in; user_id is filled at that first sign-in.
create table public.operators (
  id uuid primary key default gen_random_uuid(),
  email text not null check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$' and char_length(email) <= 320),
  user_id uuid unique,
  added_at timestamptz not null default now(),
  added_by text check (char_length(added_by) <= 200)
);
create unique index operators_email_idx on public.operators (lower(email));

-- Bearer tokens for agents, runners and operator scripts. Only the SHA-256 of a token is kept; the
-- token itself is shown once, when it is created. A token's scope is its agent, its host or its operator.
create table public.api_tokens (
  id uuid primary key default gen_random_uuid(),
  kind text not null check (kind in ('agent', 'runner', 'operator')),
  label text not null check (char_length(label) between 1 and 200),
  token_hash bytea not null unique check (octet_length(token_hash) = 32),
  token_prefix text not null check (char_length(token_prefix) <= 20),
  agent_id integer references public.agent_status (id) on delete cascade,
  host text check (char_length(host) between 1 and 255),
  operator_id uuid references public.operators (id) on delete cascade,
  created_at timestamptz not null default now(),
  created_by text check (char_length(created_by) <= 200),
  revoked_at timestamptz,
  last_used_at timestamptz,
  check ((kind = 'agent') = (agent_id is not null)),
  check ((kind = 'runner') = (host is not null)),
  check ((kind = 'operator') = (operator_id is not null))
);
