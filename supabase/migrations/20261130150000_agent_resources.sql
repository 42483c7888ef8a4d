-- CPU and memory of each supervised agent (its whole process group, read by the runner from /proc),
-- what PM2's `monit` shows. The runner sends them through runner_report_resources about once a
-- minute per agent. Two tables: the latest figures per agent (what the agents table shows, read
-- incrementally by sampled_at), and one sample a minute kept a day (the detail page's chart): at
-- most 1,440 rows per agent, pruned by the same call that adds them.

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

-- p_samples: [{"name": "...", "cpu_percent": 12.5, "memory_bytes": 73400320, "processes": 2}], for
-- agents this runner manages. A second sample in the same minute replaces the first, so however
-- often a runner sends, an agent keeps one sample a minute; samples older than a day are deleted here.
create function public.runner_report_resources(p_token text, p_samples jsonb)
  returns integer
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  item jsonb;
  v_agent_id integer;
  v_ids integer[] := '{}';
  v_cpu real;
  v_memory bigint;
  v_processes integer;
begin
  if p_samples is null or jsonb_typeof(p_samples) <> 'array' or jsonb_array_length(p_samples) > 500 then
    perform agent_private.invalid('samples must be a JSON array of at most 500 {"name", "cpu_percent", "memory_bytes", "processes"} objects');
  end if;
  for item in select value from jsonb_array_elements(p_samples) loop
    if jsonb_typeof(item -> 'cpu_percent') <> 'number' or jsonb_typeof(item -> 'memory_bytes') <> 'number'
       or (item -> 'processes' is not null and jsonb_typeof(item -> 'processes') <> 'number') then
      perform agent_private.invalid(format('sample for %s needs numbers cpu_percent and memory_bytes, got %s',
        coalesce(item ->> 'name', 'an unnamed agent'), item));
    end if;
    v_cpu := (item ->> 'cpu_percent')::real;
    v_memory := round((item ->> 'memory_bytes')::numeric)::bigint;
    v_processes := coalesce((item ->> 'processes')::integer, 1);
    if v_cpu < 0 or v_cpu > 100000 or v_memory < 0 or v_processes < 0 then
      perform agent_private.invalid(format('sample for %s is out of range: %s', item ->> 'name', item),
        'cpu_percent is 0..100 per core, memory_bytes and processes are not negative');
    end if;
    select a.id into v_agent_id from public.agent_status a where a.agent_name = item ->> 'name' and a.runner_id = r.id;
    if v_agent_id is null then
      perform agent_private.token_refused(format('agent %L', item ->> 'name'));
    end if;
    insert into public.agent_resources as x (agent_id, cpu_percent, memory_bytes, processes, sampled_at)
    values (v_agent_id, v_cpu, v_memory, v_processes, now())
    on conflict (agent_id) do update set cpu_percent = excluded.cpu_percent, memory_bytes = excluded.memory_bytes,
      processes = excluded.processes, sampled_at = excluded.sampled_at;
    insert into public.agent_resource_samples (agent_id, minute, cpu_percent, memory_bytes)
    values (v_agent_id, date_trunc('minute', now()), v_cpu, v_memory)
    on conflict (agent_id, minute) do update set cpu_percent = excluded.cpu_percent, memory_bytes = excluded.memory_bytes;
    v_ids := v_ids || v_agent_id;
  end loop;
  delete from public.agent_resource_samples where agent_id = any (v_ids) and minute < now() - interval '1 day';
  return cardinality(v_ids);
end
$$;

alter table public.agent_resources enable row level security;
alter table public.agent_resource_samples enable row level security;
revoke all on public.agent_resources, public.agent_resource_samples from public, anon, authenticated;
create policy operators_read on public.agent_resources for select to authenticated
  using ((select agent_private.is_operator()));
create policy operators_read on public.agent_resource_samples for select to authenticated
  using ((select agent_private.is_operator()));
grant select on public.agent_resources, public.agent_resource_samples to authenticated;
grant all on public.agent_resources, public.agent_resource_samples to service_role;

revoke execute on function public.runner_report_resources(text, jsonb) from public;
grant execute on function public.runner_report_resources(text, jsonb) to anon, authenticated, service_role;
