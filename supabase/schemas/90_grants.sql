-- Row level security, policies, and every grant of every table, view, sequence and function; the Realtime publication.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

grant usage on schema agent_private to authenticated, service_role;

-- Row level security on every table
alter table public.agent_status_settings enable row level security;
alter table public.runners enable row level security;
alter table public.agent_status enable row level security;
alter table public.agent_events enable row level security;
alter table public.agent_commands enable row level security;
alter table public.operators enable row level security;
alter table public.api_tokens enable row level security;
alter table public.agent_resources enable row level security;
alter table public.agent_resource_samples enable row level security;
alter table public.agent_log_requests enable row level security;
alter table public.alert_settings enable row level security;
alter table public.alert_channels enable row level security;
alter table public.alert_deliveries enable row level security;
alter table public.alert_attempts enable row level security;
alter table public.alert_pauses enable row level security;
alter table agent_private.alert_states enable row level security;
alter table agent_private.applied_reports enable row level security;
alter table agent_private.alert_dispatch_target enable row level security;

-- Policies
create policy operators_read on public.agent_status_settings
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.runners
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy hide_archived on public.agent_status
  as restrictive
  for select
  to authenticated
  using ((archived_at is null));
create policy operators_read on public.agent_status
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.agent_events
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.agent_commands
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.operators
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.agent_resources
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.agent_resource_samples
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.agent_log_requests
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.alert_settings
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.alert_deliveries
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.alert_attempts
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));
create policy operators_read on public.alert_pauses
  for select
  to authenticated
  using (( select agent_private.is_operator() as is_operator));

-- Grants

-- 10_tables.sql
grant select on table public.agent_status_settings to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.agent_status_settings to service_role;
grant select on table public.runners to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.runners to service_role;
grant select on table public.agent_status to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.agent_status to service_role;
grant select on table public.agent_events to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.agent_events to service_role;
grant select on table public.agent_commands to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.agent_commands to service_role;
grant select on table public.operators to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.operators to service_role;
grant select (agent_id) on table public.api_tokens to service_role;
grant select (agent_patterns) on table public.api_tokens to service_role;
grant select (created_at) on table public.api_tokens to service_role;
grant select (created_by) on table public.api_tokens to service_role;
grant select (expires_at) on table public.api_tokens to service_role;
grant select (host) on table public.api_tokens to service_role;
grant select (id) on table public.api_tokens to service_role;
grant select (kind) on table public.api_tokens to service_role;
grant select (label) on table public.api_tokens to service_role;
grant select (last_used_at) on table public.api_tokens to service_role;
grant select (operator_id) on table public.api_tokens to service_role;
grant select (revoked_at) on table public.api_tokens to service_role;
grant select (token_prefix) on table public.api_tokens to service_role;
grant select on table public.agent_resources to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.agent_resources to service_role;
grant select on table public.agent_resource_samples to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.agent_resource_samples to service_role;
grant select on table public.agent_log_requests to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.agent_log_requests to service_role;
-- the service role inserts agents, events and commands directly (tests, administration)
grant usage on sequence public.agent_status_id_seq, public.agent_events_id_seq, public.agent_commands_id_seq to service_role;
-- Supabase's default privileges give anon and authenticated USAGE and UPDATE (setval) on every new
-- sequence in public; nothing here lets them insert, so they get none.
revoke all on sequence public.agent_status_id_seq, public.agent_events_id_seq, public.agent_commands_id_seq,
  public.agent_log_requests_id_seq, public.alert_deliveries_id_seq, public.alert_attempts_id_seq, public.alert_pauses_id_seq
  from anon, authenticated;

-- 20_checks.sql
-- it only raises; public.dashboard_agent_page (security invoker) refuses bad arguments with it
grant execute on function agent_private.invalid(text, text) to authenticated, service_role;
revoke all on function agent_private.invalid(text, text) from public;
revoke all on function agent_private.check_agent_name(text) from public;
revoke all on function agent_private.check_text(text, text, integer) from public;
revoke all on function agent_private.check_health(integer) from public;
revoke all on function agent_private.check_status(text, text[]) from public;
revoke all on function agent_private.mask(text) from public;
revoke all on function agent_private.mask_url(text) from public;
revoke all on function agent_private.check_channel(text, text, text, jsonb) from public;
revoke all on function agent_private.refuse(text, text, text) from public;

-- 30_identity.sql
revoke all on function agent_private.hash_token(text) from public;
revoke all on function agent_private.find_token(text) from public;
revoke all on function agent_private.token_refused(text) from public;
revoke all on function agent_private.authorize_agent(text, text) from public;
revoke all on function agent_private.runner_token(text) from public;
revoke all on function agent_private.authorize_runner(text) from public;
revoke all on function agent_private.is_service() from public;
grant execute on function agent_private.is_operator() to authenticated, service_role;
revoke all on function agent_private.is_operator() from public;
revoke all on function agent_private.require_operator(text) from public;
grant execute on function public.add_operator(text, text) to anon, authenticated, service_role;
revoke all on function public.add_operator(text, text) from public;
grant execute on function public.remove_operator(text, text) to anon, authenticated, service_role;
revoke all on function public.remove_operator(text, text) from public;
grant execute on function public.whoami() to authenticated, service_role;
revoke all on function public.whoami() from public;
grant execute on function public.create_api_token(text, text, text, text, text, text, interval, text[], boolean) to anon, authenticated, service_role;
revoke all on function public.create_api_token(text, text, text, text, text, text, interval, text[], boolean) from public;
grant execute on function public.list_api_tokens(text) to anon, authenticated, service_role;
revoke all on function public.list_api_tokens(text) from public;
grant execute on function public.revoke_api_token(text, text) to anon, authenticated, service_role;
revoke all on function public.revoke_api_token(text, text) from public;
grant execute on function public.verify_api_token(text) to anon, authenticated, service_role;
revoke all on function public.verify_api_token(text) from public;
-- the read-only keys' readers (68_read_keys.sql) check their key themselves, as the token functions do
grant execute on function public.agent_metrics(text) to anon, authenticated, service_role;
revoke all on function public.agent_metrics(text) from public;
grant execute on function public.agent_badge(text, text, text) to anon, authenticated, service_role;
revoke all on function public.agent_badge(text, text, text) from public;
revoke all on function agent_private.read_key(text, text) from public;
revoke all on function agent_private.up_percent(integer, timestamp with time zone, timestamp with time zone) from public;
revoke all on function agent_private.glob_to_like(text) from public;
revoke all on function agent_private.require_service() from public;
revoke all on function agent_private.authorize_lease(text, text) from public;
revoke all on function agent_private.check_lease(public.runners, text) from public;

-- 40_state_machine.sql
grant execute
  on function agent_private.live_status(public.agent_status_value, public.agent_event_source, timestamp with time zone)
  to authenticated, service_role;
revoke all on function agent_private.live_status(public.agent_status_value, public.agent_event_source, timestamp with time zone) from public;
revoke all on function agent_private.is_event(text) from public;
revoke all
  on function agent_private.apply_event(integer, text, public.agent_event_source, text, public.agent_status_value, integer, text, text, integer, integer, text, jsonb, timestamp
    with time zone, integer)
  from public;
revoke all on function agent_private.agent_state_json(public.agent_status) from public;
revoke all on function agent_private.agent_state_answer(public.agent_status, jsonb) from public;
revoke all on function agent_private.complete_delivered_commands(integer, text) from public;
grant execute on function agent_private.heartbeat_timeout(public.agent_status, public.agent_status_settings) to authenticated, service_role;
revoke all on function agent_private.heartbeat_timeout(public.agent_status, public.agent_status_settings) from public;
-- (heartbeat_timeout calls it, as the live view's reader)
grant execute on function agent_private.heartbeat_timeout_s(public.agent_status, public.agent_status_settings) to authenticated, service_role;
revoke all on function agent_private.heartbeat_timeout_s(public.agent_status, public.agent_status_settings) from public;
revoke all on function agent_private.activity_deadline(integer, boolean, timestamp with time zone, timestamp with time zone, boolean) from public;
revoke all on function agent_private.recent_restarts(timestamp with time zone[]) from public;
grant execute on function agent_private.activity_timeout(public.agent_status, public.agent_status_settings) to authenticated, service_role;
revoke all on function agent_private.activity_timeout(public.agent_status, public.agent_status_settings) from public;
grant execute on function agent_private.crash_looping(public.agent_status) to authenticated, service_role;
revoke all on function agent_private.crash_looping(public.agent_status) from public;
grant execute on function agent_private.runner_away(text, text, integer) to authenticated, service_role;
revoke all on function agent_private.runner_away(text, text, integer) from public;
grant execute on function agent_private.live_reason(public.agent_status, text, text, integer) to authenticated, service_role;
revoke all on function agent_private.live_reason(public.agent_status, text, text, integer) from public;
grant execute on function agent_private.row_badges(public.agent_status, text) to authenticated, service_role;
revoke all on function agent_private.row_badges(public.agent_status, text) from public;
grant execute
  on function agent_private.next_agent_status(public.agent_status_value, public.agent_event_source, text, public.agent_status_value, boolean)
  to authenticated, service_role;
revoke all on function agent_private.next_agent_status(public.agent_status_value, public.agent_event_source, text, public.agent_status_value, boolean) from public;

-- 45_agent_api.sql
grant execute
  on function public.agent_heartbeat(text, text, text, integer, text, integer, integer, timestamp with time zone)
  to anon, authenticated, service_role;
revoke all on function public.agent_heartbeat(text, text, text, integer, text, integer, integer, timestamp with time zone) from public;
grant execute
  on function public.agent_report(text, text, text, text, integer, text, integer, integer, text, jsonb, timestamp with time zone, integer, uuid)
  to anon, authenticated, service_role;
revoke all on function public.agent_report(text, text, text, text, integer, text, integer, integer, text, jsonb, timestamp with time zone, integer, uuid) from public;
grant execute on function public.force_agent_status(text, text, integer, text, text) to anon, authenticated, service_role;
revoke all on function public.force_agent_status(text, text, integer, text, text) from public;
revoke all on function agent_private.heartbeat_batch_item(jsonb) from public;
revoke all on function agent_private.steady_heartbeats(jsonb) from public;
revoke all on function agent_private.lock_batch_agents(jsonb, uuid) from public;
revoke all on function agent_private.batch_answers(jsonb, text, text) from public;
revoke all on function agent_private.refused_for_good(text) from public;
revoke all on function agent_private.batch_item_failure(text, text, text) from public;
grant execute on function public.agent_heartbeat_batch(jsonb) to service_role;
revoke all on function public.agent_heartbeat_batch(jsonb) from public;
grant execute on function public.set_agent_timeouts(text, integer, integer, text) to anon, authenticated, service_role;
revoke all on function public.set_agent_timeouts(text, integer, integer, text) from public;
grant execute on function public.reset_agent_restarts(text, text) to anon, authenticated, service_role;
revoke all on function public.reset_agent_restarts(text, text) from public;
grant execute on function public.archive_agent(text, text) to anon, authenticated, service_role;
revoke all on function public.archive_agent(text, text) from public;

-- 50_runners.sql
grant execute on function public.runner_register(text, jsonb, text, integer, text) to anon, authenticated, service_role;
revoke all on function public.runner_register(text, jsonb, text, integer, text) from public;
grant execute on function public.runner_heartbeat(text, jsonb, integer, jsonb) to anon, authenticated, service_role;
revoke all on function public.runner_heartbeat(text, jsonb, integer, jsonb) from public;
grant execute on function public.runner_offline(text, text) to anon, authenticated, service_role;
revoke all on function public.runner_offline(text, text) from public;
grant execute on function agent_private.runner_silent_after(public.runners, public.agent_status_settings) to authenticated, service_role;
revoke all on function agent_private.runner_silent_after(public.runners, public.agent_status_settings) from public;
revoke all on function agent_private.runner_silent(uuid) from public;
grant execute on function public.runner_lease(text, text, integer, boolean) to anon, authenticated, service_role;
revoke all on function public.runner_lease(text, text, integer, boolean) from public;
grant execute on function public.runner_report_batch(text, jsonb) to anon, authenticated, service_role;
revoke all on function public.runner_report_batch(text, jsonb) from public;
grant execute on function public.runner_report_resources(text, jsonb) to anon, authenticated, service_role;
revoke all on function public.runner_report_resources(text, jsonb) from public;

-- 55_commands.sql
revoke all on function agent_private.command_actor() from public;
revoke all on function agent_private.agent_commands_before_insert() from public;
revoke all on function agent_private.agent_commands_after_insert() from public;
revoke all on function agent_private.refuse_view_write() from public;
grant execute on function public.enqueue_agent_commands(text, text, text, text, text) to anon, authenticated, service_role;
revoke all on function public.enqueue_agent_commands(text, text, text, text, text) from public;
grant execute on function public.runner_claim_commands(text, integer, text) to anon, authenticated, service_role;
revoke all on function public.runner_claim_commands(text, integer, text) from public;
grant execute on function public.runner_complete_command(text, bigint, boolean, text, text) to anon, authenticated, service_role;
revoke all on function public.runner_complete_command(text, bigint, boolean, text, text) from public;

-- 60_sweep.sql
grant execute on function public.agent_status_sweep() to service_role;
revoke all on function public.agent_status_sweep() from public;

-- 65_reads.sql
grant select on table public.agent_status_live to authenticated;
grant select on table public.agent_status_live to service_role;
grant execute on function public.operator_list_agents(text, text, integer, text, integer) to anon, authenticated, service_role;
revoke all on function public.operator_list_agents(text, text, integer, text, integer) from public;
grant execute on function public.dashboard_agent_page(text, text, boolean, text, text, boolean, integer, integer, jsonb) to authenticated, service_role;
revoke all on function public.dashboard_agent_page(text, text, boolean, text, text, boolean, integer, integer, jsonb) from public;
grant execute on function agent_private.fleet_unchanged(jsonb, jsonb, boolean) to authenticated, service_role;
revoke all on function agent_private.fleet_unchanged(jsonb, jsonb, boolean) from public;
grant execute on function public.operator_agent_events(text, bigint, integer, timestamp with time zone, text) to anon, authenticated, service_role;
revoke all on function public.operator_agent_events(text, bigint, integer, timestamp with time zone, text) from public;
grant execute on function public.operator_commands(bigint[], text) to anon, authenticated, service_role;
revoke all on function public.operator_commands(bigint[], text) from public;
grant execute on function public.operator_sweep_status(text) to anon, authenticated, service_role;
revoke all on function public.operator_sweep_status(text) from public;
grant select on table public.runner_status_live to authenticated;
grant select on table public.runner_status_live to service_role;
revoke all on function agent_private.status_segments(integer, timestamp with time zone, timestamp with time zone) from public;
grant execute on function public.agent_availability(text, timestamp with time zone, text) to anon, authenticated, service_role;
revoke all on function public.agent_availability(text, timestamp with time zone, text) from public;
grant execute on function public.agent_history(text, bigint, text, integer, text) to anon, authenticated, service_role;
revoke all on function public.agent_history(text, bigint, text, integer, text) from public;

-- 67_logs.sql
grant execute on function public.request_agent_logs(text, integer, text) to anon, authenticated, service_role;
revoke all on function public.request_agent_logs(text, integer, text) from public;
grant execute on function public.operator_agent_logs(bigint, text) to anon, authenticated, service_role;
revoke all on function public.operator_agent_logs(bigint, text) from public;
grant execute on function public.runner_claim_log_requests(text) to anon, authenticated, service_role;
revoke all on function public.runner_claim_log_requests(text) from public;
grant execute on function public.runner_answer_log_request(text, bigint, jsonb, jsonb, text) to anon, authenticated, service_role;
revoke all on function public.runner_answer_log_request(text, bigint, jsonb, jsonb, text) from public;

-- 70_alerts.sql
grant select on table public.alert_settings to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.alert_settings to service_role;
grant delete, insert, references, select, trigger, truncate, update on table public.alert_channels to service_role;
grant select on table public.alert_deliveries to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.alert_deliveries to service_role;
grant select on table public.alert_attempts to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.alert_attempts to service_role;
grant select on table public.alert_pauses to authenticated;
grant delete, insert, references, select, trigger, truncate, update on table public.alert_pauses to service_role;
revoke all on function agent_private.alert_channel_matches(public.alert_channels, text, text, text) from public;
revoke all on function agent_private.alerts_paused(integer, text) from public;
revoke all on function agent_private.alert_notice(text, public.agent_status, text, text, text, text, timestamp with time zone, text, integer, jsonb) from public;
revoke all on function agent_private.alert_enqueue(uuid, bigint, integer, uuid, text, text, jsonb, timestamp with time zone) from public;
revoke all on function agent_private.alert_state(uuid, text, integer, uuid) from public;
revoke all on function agent_private.alert_host_down(public.alert_channels, public.runners, bigint, text) from public;
revoke all on function agent_private.alert_agent_down(public.alert_channels, public.agent_status, text, bigint, text, text, text) from public;
revoke all on function agent_private.alert_recovered(public.alert_channels, text, public.agent_status, public.runners, bigint, text, text, text) from public;
revoke all on function agent_private.agent_health_word(public.agent_status_live) from public;
revoke all on function agent_private.agent_health_rank(public.agent_status_live) from public;
revoke all on function agent_private.alert_flip(public.agent_events) from public;
revoke all on function agent_private.alerts_on_event() from public;
revoke all on function agent_private.alert_pause_end(public.alert_pauses, text) from public;
revoke all on function agent_private.alert_tick() from public;
revoke all on function agent_private.default_endpoint(text, jsonb) from public;
grant execute on function public.alert_channel_save(text, text, text, text, jsonb, text, jsonb) to anon, authenticated, service_role;
revoke all on function public.alert_channel_save(text, text, text, text, jsonb, text, jsonb) from public;
grant execute on function public.alert_channel_rules(text, jsonb, text) to anon, authenticated, service_role;
revoke all on function public.alert_channel_rules(text, jsonb, text) from public;
grant execute on function public.alert_channel_remove(text, text) to anon, authenticated, service_role;
revoke all on function public.alert_channel_remove(text, text) from public;
grant execute on function public.alert_channel_test(text, text) to anon, authenticated, service_role;
revoke all on function public.alert_channel_test(text, text) from public;
grant execute on function public.operator_alert_channels(text) to anon, authenticated, service_role;
revoke all on function public.operator_alert_channels(text) from public;
grant execute on function public.operator_alert_deliveries(text, integer, text) to anon, authenticated, service_role;
revoke all on function public.operator_alert_deliveries(text, integer, text) from public;
grant execute on function public.operator_alert_attempts(bigint[], text) to anon, authenticated, service_role;
revoke all on function public.operator_alert_attempts(bigint[], text) from public;
grant execute on function public.alert_pause(text, text, timestamp with time zone, text, text) to anon, authenticated, service_role;
revoke all on function public.alert_pause(text, text, timestamp with time zone, text, text) from public;
grant execute on function public.alert_resume(text, text, text) to anon, authenticated, service_role;
revoke all on function public.alert_resume(text, text, text) from public;
grant select on table public.agent_alerts_paused to authenticated;
grant select on table public.agent_alerts_paused to service_role;
grant execute on function public.operator_alert_pauses(text) to anon, authenticated, service_role;
revoke all on function public.operator_alert_pauses(text) from public;
revoke all on function agent_private.alert_incident_key(text) from public;
revoke all on function agent_private.alert_crash_loop(public.alert_channels, public.agent_status, public.agent_events) from public;

-- 80_alerts_dispatch.sql
grant execute on function public.alert_claim(text, integer) to service_role;
revoke all on function public.alert_claim(text, integer) from public;
grant execute on function public.alert_complete(bigint, integer, boolean, integer, text, text, integer, text) to service_role;
revoke all on function public.alert_complete(bigint, integer, boolean, integer, text, text, integer, text) from public;
revoke all on function agent_private.alert_wake() from public;
revoke all on function agent_private.alert_deliveries_wake() from public;
grant execute on function public.alert_configure_dispatch(text, text) to service_role;
revoke all on function public.alert_configure_dispatch(text, text) from public;
revoke all on function agent_private.alert_dispatch_key() from public;
grant execute on function public.alert_dispatch_authorized(text) to service_role;
revoke all on function public.alert_dispatch_authorized(text) from public;
grant execute on function public.alert_complete_batch(jsonb, text) to service_role;
revoke all on function public.alert_complete_batch(jsonb, text) from public;

-- Realtime where the project has it (a hint for dashboards and runners; polling stays the truth).
do $$
declare
  t text;
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    foreach t in array array['agent_status', 'agent_commands', 'agent_events', 'runners'] loop
      if not exists (select 1 from pg_publication_tables
                     where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t) then
        execute format('alter publication supabase_realtime add table public.%I', t);
      end if;
    end loop;
  end if;
end
$$;
