-- The core tables: settings, runners, agents, their events, commands, operators, tokens, resources and log requests; domains and indexes.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

create schema if not exists agent_private;
comment on schema agent_private is 'Helpers of the agent-status SQL API. Not exposed through PostgREST; call the public functions.';

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
  -- What the runner last was: online; offline (the sweep found it silent past its deadline); stopped
  -- (it said goodbye, on SIGTERM: planned, not an incident). The live status adds silent, read at
  -- read time (runner_status_live); shared/status.ts RUNNER_STATUSES mirrors both, kept equal by a test.
  status text not null default 'online' check (status in ('online', 'offline', 'stopped')),
  version text check (char_length(version) <= 100),
  pid integer,
  started_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  stopped_at timestamptz,
  metadata jsonb not null default '{}' check (pg_column_size(metadata) <= 8192),
  -- The interval a runner heartbeats at (runner_heartbeat's p_interval_s): it is silent after two.
  heartbeat_interval_s integer check (heartbeat_interval_s between 1 and 86400),
  -- One live runner per host. A second runner with the same host's token registered silently, adopted
  -- the first one's agents and undid operators' stops (it saw a stopped agent as crashed and restarted
  -- it within a second). Now a runner takes the host's lease before it registers: the lease is the
  -- runner's instance id (the AGENT_STATUS_RUNNER mark of the processes it starts, kept across its own
  -- restarts), held while the runner is seen (last_seen_at, which every command poll moves). A second
  -- instance is refused with the live one's pid, start and last contact, until the live one has been
  -- silent for runner_offline_after_s or the newcomer asks to take over. The runner that lost the lease
  -- is refused on its next poll and stops.
  instance text check (char_length(instance) between 1 and 100)
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
  created_at timestamptz not null default now(),
  -- Restarts after a crash (a start while unstable_since is set): all of them, and the times of the
  -- recent ones (at most 100, none older than 10 minutes), so "restart 12 in 10 min" is one read.
  restarts_total integer not null default 0,
  restart_times timestamptz[] not null default '{}' check (cardinality(restart_times) <= 100),
  -- Set by a crash, cleared by the runner's `stable` (the process stayed up past its stable period),
  -- a stop on command, a clean exit or a force. While set, the agent never reads running.
  unstable_since timestamptz,
  -- When the runner will start it again (a crash report's details.restart_in_s), while it waits.
  next_restart_at timestamptz,
  -- The history row a crash loop's repeated identical crashes are counted on (details.repeats).
  crash_loop_event_id bigint,
  -- The latest warning and error stay after the agent recovers (last_error is the seed's column).
  last_warning text check (char_length(last_warning) <= 4000),
  last_warning_at timestamptz,
  last_error_at timestamptz,
  -- The heartbeat interval the agent's SDK declares; without an explicit timeout the heartbeat
  -- timeout is derived from it (2.5 intervals), not the 120 s default.
  heartbeat_interval_s integer check (heartbeat_interval_s between 1 and 86400),
  -- Timeouts an operator set (set_agent_timeouts); they win over the runner's config and the
  -- derived value, and survive the runner registering again.
  operator_heartbeat_timeout_s integer check (operator_heartbeat_timeout_s between 5 and 86400),
  operator_activity_timeout_s integer check (operator_activity_timeout_s between 10 and 604800),
  -- Operators can remove an agent and keep its history. There was no delete at all (three calls with a
  -- runner token created 1,500 agent rows nobody could remove), and a delete would cascade to the
  -- agent's events and commands. Archiving instead:
  --   * hides the agent from every list (the live view through a restrictive RLS policy, the token
  --     readers through their own filter) while agent_events keeps its history under its id;
  --   * frees its name (the row is renamed "<name> [archived <id>]"), so a new agent may take it;
  --   * revokes its agent tokens, detaches it from its runner, clears its deadlines (the sweep leaves
  --     it alone) and fails its unfinished commands;
  --   * refuses an agent that is alive: stop it first, or it would keep reporting into a hidden row.
  archived_at timestamptz,
  -- The times of its recent crashes (none older than 10 minutes, at most 100): a crash loop is three
  -- of them within the window while not yet stable (agent_private.crash_looping), one rule for the
  -- row, its badge, `list` and the alerts.
  crash_times timestamptz[] not null default '{}' check (cardinality(crash_times) <= 100),
  -- When the value in `health` was last given by somebody: an agent, its runner or an operator (a
  -- heartbeat, report or force carrying a health). Null while `health` holds the state machine's own
  -- default (0 before any report, 100 or 50 at a start, 0 at a stop or crash) or the process that
  -- reported it has ended: an agent nobody told health of reads "not reported", never "0" (the seed's
  -- column stays not null, default 0, for the queries that read it). Not indexed: a heartbeat
  -- carrying health writes it, and must stay a heap-only update (tests/db/heartbeat-in-place.test.ts).
  health_reported_at timestamptz
)
-- Room on each page for a row's next version: a heartbeat's UPDATE then stays on the row's page
-- (a heap-only update, see the indexes below) instead of moving it and writing every index again.
with (fillfactor = 80);

create index agent_status_archived_idx on public.agent_status (archived_at) where archived_at is not null;

create index agent_status_runner_idx on public.agent_status (runner_id) where runner_id is not null;

-- No index on a column a steady heartbeat writes (last_heartbeat, updated_at, stale_at, inactive_at,
-- pid, the activity): PostgreSQL then applies the heartbeat as a heap-only (HOT) update, the new
-- version on the same page and no index entry written, where an index on stale_at, inactive_at and
-- updated_at made every heartbeat insert an entry into each index (four to six of them). pgbench,
-- 50-batches of agent_heartbeat_batch, the two alternated seven times on one database: a median of
-- 32.9 against 43.4 µs of PostgreSQL CPU per heartbeat (npm run bench, BENCH=heartbeat, measures both
-- and prints the share of heap-only updates). What the indexes served reads the table instead: the sweep's
-- due agents once a minute (100,000 agents: 10 ms) and the dashboard's next deadline once per full
-- pass (11 ms, beside a pass of 200-500 ms). tests/db/heartbeat-in-place.test.ts keeps it so.

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

-- History that reads: one agent's events newest first, a page at a time (keyset on the event id),
-- optionally only one kind, with runs of identical events folded into one row. A crash loop is a run
-- of a two-event cycle (crashed, started, crashed, started...): it folds into "crashed and started
-- x37", so its page stays short. Events are identical when kind, source, statuses and message match,
-- digits aside (pids, attempt numbers and exit codes do not make a crash a different one).
create index agent_events_agent_id_idx on public.agent_events (agent_id, id);

create index agent_events_at_idx on public.agent_events (at);

create index agent_events_problems_idx on public.agent_events (agent_id, at)
  where kind in ('warning', 'inactive', 'error', 'crashed');

create index agent_events_runner_at_idx on public.agent_events (runner_id, at desc) where runner_id is not null;

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
  check ((status in ('succeeded', 'failed', 'expired')) = (finished_at is not null)),
  -- enqueue_agent_commands(p_idempotency_key): a retried request gets its first commands back
  idempotency_key text check (char_length(idempotency_key) between 1 and 200),
  -- what the key's first request asked ("restart agent 'x'"): the same key with another request is
  -- refused (422) instead of silently answering the first one's commands
  idempotency_request text check (char_length(idempotency_request) <= 300),
  -- A stop or restart of an agent no runner manages (in a container, on a laptop) travels in the
  -- answer to the agent's own heartbeats and reports (agent_state_json's `desired`), as Temporal
  -- delivers cancellation through heartbeats; the agent's SDK acts on it, and its stopped (or, for a
  -- restart, started) report completes the command.
  via_heartbeat boolean not null default false
);

create index agent_commands_claimed_idx on public.agent_commands (claimed_at) where status = 'claimed';

create index agent_commands_finished_idx on public.agent_commands (finished_at) where finished_at is not null;

-- per requester: two operators' keys never collide; per agent: one key covers a host's or all agents' commands
create unique index agent_commands_idempotency_idx on public.agent_commands (requested_by, idempotency_key, agent_id)
  where idempotency_key is not null;

create index agent_commands_pending_expiry_idx on public.agent_commands (expires_at) where status = 'pending';

create index agent_commands_pending_idx on public.agent_commands (agent_id, id) where status = 'pending';

-- Every heartbeat and report answer looks for a wish to deliver (agent_state_json): a probe of this
-- index, empty but for the stops and restarts in flight to agents no runner manages.
create index agent_commands_via_heartbeat_idx on public.agent_commands (agent_id, id)
  where via_heartbeat and status in ('pending', 'claimed');

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
  -- metrics (a Prometheus scrape) and badge (README badges): read-only keys, each good for its one reader
  kind text not null check (kind in ('agent', 'runner', 'operator', 'metrics', 'badge')),
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
  check ((kind = 'operator') = (operator_id is not null)),
  -- Honest attribution and lifetimes for operators' tokens and commands:
  --   * an operator token is made only for oneself (an operator minted one for another operator's email
  --     and acted as them: requested_by and the event's actor named the other person); the service role
  --     (an administrator) may still make one for anybody;
  --   * tokens may expire (create_api_token(p_expires_in)); an expired token is refused like a revoked
  --     one, and list_api_tokens shows the expiry beside the last use;
  --   * the command insert trigger checks permission before it reads the agent, so a signed-in
  --     non-operator inserting into agent_commands learns nothing (it learnt agent names from the
  --     trigger's error: 31 names for ids 1-39);
  --   * enqueue_agent_commands takes an idempotency key: a client retrying a request whose answer it
  --     lost (a timeout) gets the commands of the first request back instead of queuing them again.
  expires_at timestamptz,
  -- A runner token names the agents it may register: names or patterns (* any run, ? one character),
  -- given when it is made (`agent-status token create runner --host h --agents 'scraper-*,Tweet Agent'`).
  -- runner_register refuses any other name with an error naming the token, the agent and what the token
  -- allows; three calls with a runner token once created 1,500 agent rows. A token made without a list
  -- (every runner token made before this migration) may register any name, as before; `token list`
  -- shows which.
  agent_patterns text[]
    check (agent_patterns is null or (kind = 'runner' and cardinality(agent_patterns) between 1 and 100)),
  -- A runner token without a list speaks for the agents its host already has; it adds new agent names
  -- only when it was made to (`token create runner --new-agents`, healthchecks' auto-provisioning made
  -- explicit): such a token once minted 1,500 agents and took another host's. Tokens made before this
  -- column existed keep adding names (the migration sets it for them), so no deployed runner breaks.
  may_add_agents boolean not null default false
    check (not may_add_agents or (kind = 'runner' and agent_patterns is null)),
  constraint api_tokens_expires_after_creation check (expires_at > created_at)
);

-- CPU and memory of each supervised agent (its whole process group, read by the runner from /proc),
-- what PM2's `monit` shows. The runner sends them through runner_report_resources about once a
-- minute per agent. Two tables: the latest figures per agent (what the agents table shows, read
-- incrementally by sampled_at), and one sample a minute kept a day (the detail page's chart): at
-- most 1,440 rows per agent, pruned by the same call that adds them.
-- Reports already applied, by the id their sender gave them (report_id, the same on every retry), so
-- a report sent again after its answer was lost is applied once: during a 20 s PostgREST freeze one
-- kill -9 became 2 crashed and 3 started events, restarts_total +4. Private; the sweep forgets ids
-- after a day (senders retry for minutes).
create table agent_private.applied_reports (
  agent_id integer not null references public.agent_status (id) on delete cascade,
  report_id uuid not null,
  applied_at timestamptz not null default now(),
  primary key (agent_id, report_id)
);

create index applied_reports_applied_at_idx on agent_private.applied_reports (applied_at);

create table public.agent_resources (
  agent_id integer primary key references public.agent_status (id) on delete cascade,
  -- of one core: a process using two cores fully reads 200
  cpu_percent real not null check (cpu_percent between 0 and 100000),
  memory_bytes bigint not null check (memory_bytes >= 0),
  processes integer not null check (processes >= 0),
  sampled_at timestamptz not null default now()
);

create index agent_resources_sampled_at_idx on public.agent_resources (sampled_at);

create table public.agent_resource_samples (
  agent_id integer not null references public.agent_status (id) on delete cascade,
  minute timestamptz not null,
  cpu_percent real not null check (cpu_percent between 0 and 100000),
  memory_bytes bigint not null check (memory_bytes >= 0),
  primary key (agent_id, minute)
);

-- Logs on demand. Agents write stdout and stderr to files on their host; nothing ships them anywhere
-- until an operator asks. The operator asks for the last N lines (request_agent_logs), the agent's
-- runner claims the request on its next log poll (every 2 s; every 500 ms for a minute after a
-- request), reads the files and answers (runner_answer_log_request), and the operator reads the
-- answer (operator_agent_logs). The
-- table is short-lived and bounded: a request lives ten minutes, an answer holds at most 500 lines of
-- at most 1,000 characters per stream, and one agent has at most 10 requests waiting.
create table public.agent_log_requests (
  id bigint generated always as identity primary key,
  agent_id integer not null references public.agent_status (id) on delete cascade,
  lines integer not null check (lines between 1 and 500),
  requested_by text not null check (char_length(requested_by) <= 200),
  requested_at timestamptz not null default now(),
  claimed_at timestamptz,
  answered_at timestamptz,
  stdout jsonb check (jsonb_typeof(stdout) = 'array'),
  stderr jsonb check (jsonb_typeof(stderr) = 'array'),
  error text check (char_length(error) <= 4000),
  check (pg_column_size(stdout) + pg_column_size(stderr) <= 1100000)
);

create index agent_log_requests_agent_idx on public.agent_log_requests (agent_id, id) where answered_at is null;

create index agent_log_requests_requested_at_idx on public.agent_log_requests (requested_at);
