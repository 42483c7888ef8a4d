// public.dashboard_agent_page: the dashboard's list done by the database at fleet size. Every answer
// is checked against the live view (agent_status_live) read as the same operator: the chips' counts,
// what a filter, a search and each sort let through and in which order, the last agent by name, the
// rows as the view reads them. Also the CLI's keyset pages of operator_list_agents.
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type postgres from 'postgres';
import type { Sql } from 'postgres';
import { ROW_BADGES } from '../../shared/status.ts';
import { asRole, useTestDatabase } from '../helpers/database.ts';

const db = useTestDatabase();
const operator = { sub: randomUUID(), email: 'ops@example.com' };
const FLEET = 2500;

interface Page {
  total: number;
  matching: number;
  offset: number;
  statuses: Record<string, number>;
  hosts: (string | null)[];
  runners: Record<string, Record<string, number>>;
  rows: Record<string, unknown>[];
  /** sent back as `since`: the next poll may then answer unchanged */
  mark: { deadline: string | null; ids: number[] } & Record<string, unknown>;
  unchanged?: true;
}

type Query = Partial<{
  status: string;
  host: string;
  withoutHost: boolean;
  search: string;
  sort: string;
  descending: boolean;
  offset: number;
  limit: number;
  since: Page['mark'];
}>;

const asOperator = <T>(fn: (tx: Sql) => PromiseLike<T>) => asRole(db.sql, 'authenticated', operator, fn);

function page(q: Query, claims = operator): Promise<Page> {
  return asRole(db.sql, 'authenticated', claims, (tx) => pageIn(tx, q));
}

async function pageIn(tx: Sql, q: Query): Promise<Page> {
  const [{ p }] = await tx`select public.dashboard_agent_page(
    ${q.status ?? null}, ${q.host ?? null}, ${q.withoutHost ?? false}, ${q.search ?? null},
    ${q.sort ?? 'status'}, ${q.descending ?? false}, ${q.offset ?? 0}, ${q.limit ?? 100},
    ${q.since ? tx.json(q.since as postgres.JSONValue) : null}::jsonb) as p`;
  return p as Page;
}

/** Every matching agent's name, in page order, read page by page as the table scrolls. */
async function allNames(q: Query): Promise<string[]> {
  const names: string[] = [];
  for (let offset = 0; ; offset += 1000) {
    const p = await page({ ...q, offset, limit: 1000 });
    names.push(...p.rows.map((row) => row.agent_name as string));
    if (offset + 1000 >= p.matching) return names;
  }
}

/** The live view as the operator reads it, with the reason as its row says it. */
type Live = { id: number; agent_name: string; status: string; host: string | null; status_reason: string | null };
const live = () =>
  asOperator(
    (tx) => tx<Live[]>`select l.id, l.agent_name, l.status, l.host, l.status_reason from public.agent_status_live l order by l.agent_name`,
  );

beforeAll(async () => {
  await db.sql`select public.add_operator(${operator.email})`;
  await db.sql`update public.operators set user_id = ${operator.sub} where lower(email) = ${operator.email}`.catch(() => {});
  const [runner] = await db.sql`insert into public.runners (host) values ('host-runner') returning id`;
  // Every status, 7 hosts and agents without one, some past their heartbeat deadline (stale when read),
  // reasons to search, CPU figures to sort by. Names in random order of insertion.
  await db.sql`
    insert into public.agent_status (agent_name, status, status_source, health, host, runner_id, last_heartbeat,
                                     started_at, stale_at, status_reason, last_activity, health_reported_at)
    select format('agent %s', lpad(n::text, 5, '0')),
           (array['running', 'running', 'warning', 'error', 'stopped'])[1 + n % 5], 'agent', (n * 37) % 101,
           case when n % 8 = 7 then null else format('host-%s', n % 8) end,
           case when n % 8 = 0 then ${runner.id}::uuid end,
           now() - make_interval(secs => n % 97), now() - make_interval(mins => n % 300),
           case when n % 5 in (0, 1, 2) then now() + case when n % 11 = 0 then interval '-1 minute' else interval '1 hour' end end,
           case when n % 13 = 0 then 'upstream 100%_sure timeout' when n % 5 = 3 then 'disk full' end,
           format('batch %s', n % 17),
           -- a quarter never reported their health: the row's 0..100 is the column's default to them
           case when n % 4 <> 0 then now() - make_interval(secs => n % 60) end
    from generate_series(1, ${FLEET}) n order by md5(n::text)`;
  await db.sql`insert into public.agent_resources (agent_id, cpu_percent, memory_bytes, processes)
               select id, (id * 7) % 100, (40 + id % 400) * 1048576, 1 from public.agent_status where id % 3 <> 0`;
  await db.sql`insert into public.agent_status (agent_name, status, archived_at) values ('zzz archived', 'stopped', now())`;
  // as autovacuum would have by now: the plans are those of tables whose sizes are known
  await db.sql`analyze`;
});

describe('dashboard_agent_page', () => {
  it('counts every status as the live view does, past the deadline included, in one call', async () => {
    const rows = await live();
    expect(rows.length).toBe(FLEET);
    const p = await page({});
    const byStatus: Record<string, number> = {};
    for (const row of rows) byStatus[row.status] = (byStatus[row.status] ?? 0) + 1;
    expect(byStatus.stale).toBeGreaterThan(0);
    expect(p.statuses).toEqual(byStatus);
    expect(p.total).toBe(FLEET);
    expect(p.matching).toBe(FLEET);
    expect(p.hosts).toEqual([null, ...[0, 1, 2, 3, 4, 5, 6].map((i) => `host-${i}`)]);
    const [runner] = await db.sql`select id from public.runners`;
    const managed: Record<string, number> = {};
    for (const row of rows.filter((r) => r.host === 'host-0')) managed[row.status] = (managed[row.status] ?? 0) + 1;
    expect(p.runners).toEqual({ [runner.id]: managed });
    expect(p.rows).toHaveLength(100);
  });

  it('gives each row as the live view reads it, without metadata', async () => {
    // one transaction: the same now() for both
    const [p, view] = await asOperator(async (tx) => [
      (await tx`select public.dashboard_agent_page(p_sort => 'name', p_limit => 3) as p`)[0].p as Page,
      await tx`select to_jsonb(l) - 'metadata' as row from public.agent_status_live l order by agent_name limit 3`,
    ]);
    expect(p.rows).toEqual(view.map((v) => v.row));
    expect(Object.keys(p.rows[0])).not.toContain('metadata');
  });

  it('filters by status, host and no host, and searches name, host and reason, as the live view says them', async () => {
    const rows = await live();
    const names = (keep: (row: Live) => boolean) => rows.filter(keep).map((row) => row.agent_name);
    expect(await allNames({ status: 'stale', sort: 'name' })).toEqual(names((r) => r.status === 'stale'));
    expect(await allNames({ host: 'host-3', status: 'error', sort: 'name' })).toEqual(
      names((r) => r.host === 'host-3' && r.status === 'error'),
    );
    expect(await allNames({ withoutHost: true, sort: 'name' })).toEqual(names((r) => r.host === null));
    // name, host and reason; any case; % and _ are letters
    expect(await allNames({ search: 'AGENT 0012', sort: 'name' })).toEqual(names((r) => r.agent_name.startsWith('agent 0012')));
    expect(await allNames({ search: 'ost-5', sort: 'name' })).toEqual(names((r) => r.host === 'host-5'));
    const reasons = await allNames({ search: '100%_sure', sort: 'name' });
    expect(reasons.length).toBeGreaterThan(0);
    expect(reasons).toEqual(names((r) => (r.status_reason ?? '').includes('100%_sure')));
    expect(await allNames({ search: '100_%sure', sort: 'name' })).toEqual([]);
    // the sentence the view makes of a passed deadline, which no agent recorded
    const silent = await allNames({ search: 'NO HEARTBEAT FOR', sort: 'name' });
    expect(silent.length).toBeGreaterThan(0);
    expect(silent).toEqual(names((r) => r.status === 'stale'));
    expect(silent).toEqual(names((r) => (r.status_reason ?? '').startsWith('no heartbeat for ')));
    const p = await page({ status: 'error', host: 'host-3' });
    expect(p.matching).toBe(names((r) => r.host === 'host-3' && r.status === 'error').length);
    expect(p.total).toBe(FLEET);
  });

  it("searches the words on a row's badges: crash loop, no runner, its runner not online", async () => {
    const [online] = await db.sql`insert into public.runners (host) values ('badge-online') returning id`;
    const [stopped] = await db.sql`insert into public.runners (host, status, last_seen_at, stopped_at)
      values ('badge-stopped', 'stopped', now() - interval '5 minutes', now() - interval '5 minutes') returning id`;
    // crashed three times in 10 minutes, not stable since: its badge says crash loop, its reason the last exit
    await db.sql`insert into public.agent_status (agent_name, status, status_source, host, runner_id, status_reason,
                                                  unstable_since, crash_times, stale_at)
      values ('badge crashing', 'warning', 'runner', 'badge-online', ${online.id},
              'exited with code 3 after 8.0 s; restarting in 60 s', now() - interval '3 minutes',
              array[now() - interval '3 minutes', now() - interval '2 minutes', now() - interval '1 minute'], now() + interval '1 hour'),
             ('badge unwatched', 'error', 'runner', 'badge-stopped', ${stopped.id}, 'boom', null, '{}', null)`;
    try {
      const rows = await asOperator(
        (tx) => tx<(Live & { runner_id: string | null; runner_status: string | null; crash_looping: boolean })[]>`
          select agent_name, status_reason, runner_id, runner_status, crash_looping from public.agent_status_live order by agent_name`,
      );
      const crashing = rows.find((r) => r.agent_name === 'badge crashing')!;
      expect(crashing.crash_looping).toBe(true);
      expect(crashing.status_reason).not.toMatch(/crash/i);
      expect(await allNames({ search: 'CRASH', sort: 'name' })).toEqual(['badge crashing']);
      expect(await allNames({ search: ROW_BADGES.crashLoop, sort: 'name' })).toEqual(['badge crashing']);

      const unmanaged = rows.filter((r) => r.runner_id === null).map((r) => r.agent_name);
      expect(unmanaged.length).toBeGreaterThan(1000);
      expect(await allNames({ search: ROW_BADGES.noRunner, sort: 'name' })).toEqual(unmanaged);

      // "runner stopped 5 min ago" on the row; the reason (an error's) says nothing of its runner
      const unwatched = `${ROW_BADGES.runnerAway} stopped`;
      expect(rows.find((r) => r.agent_name === 'badge unwatched')!.status_reason).toBe('boom');
      expect(await allNames({ search: unwatched, sort: 'name' })).toEqual(
        rows.filter((r) => r.runner_id !== null && r.runner_status === 'stopped').map((r) => r.agent_name),
      );
      expect(await allNames({ search: unwatched, sort: 'name' })).toContain('badge unwatched');
      // one badge a line: no match across two
      expect(await allNames({ search: 'loop no', sort: 'name' })).toEqual([]);
    } finally {
      await db.sql`delete from public.agent_status where agent_name like 'badge %'`;
      await db.sql`delete from public.runners where host like 'badge-%'`;
    }
  });

  it('sorts by each column both ways, ties by name, and reaches the last agent by name', async () => {
    const rows = await asOperator(
      (tx) => tx<(Live & { health: number; unreported: number; heartbeat_ms: number })[]>`
        select agent_name, status, health, (health_reported_at is null)::int as unreported,
               extract(epoch from last_heartbeat) * 1000 as heartbeat_ms from public.agent_status_live`,
    );
    const severity: Record<string, number> = { error: 0, stale: 1, warning: 2, running: 3, stopped: 4 };
    const byName = (a: { agent_name: string }, b: { agent_name: string }) => (a.agent_name < b.agent_name ? -1 : 1);
    const expected = (key: (row: (typeof rows)[number]) => number, descending: boolean) =>
      [...rows].sort((a, b) => (descending ? -1 : 1) * (key(a) - key(b)) || byName(a, b)).map((row) => row.agent_name);
    expect(await allNames({ sort: 'status' })).toEqual(expected((r) => severity[r.status], false));
    expect(await allNames({ sort: 'status', descending: true })).toEqual(expected((r) => severity[r.status], true));
    // a health nobody reported is no figure: those agents come last both ways, by name
    const byHealth = (descending: boolean) =>
      [...rows]
        .sort((a, b) => a.unreported - b.unreported || (a.unreported ? 0 : (descending ? -1 : 1) * (a.health - b.health)) || byName(a, b))
        .map((row) => row.agent_name);
    expect(rows.filter((row) => row.unreported).length).toBeGreaterThan(100);
    expect(await allNames({ sort: 'health' })).toEqual(byHealth(false));
    expect(await allNames({ sort: 'health', descending: true })).toEqual(byHealth(true));
    expect(await allNames({ sort: 'heartbeat' })).toEqual(expected((r) => -r.heartbeat_ms, false));

    const last = rows
      .map((row) => row.agent_name)
      .sort()
      .at(-1);
    const end = await page({ sort: 'name', offset: FLEET - 1, limit: 5 });
    expect(end.rows.map((row) => row.agent_name)).toEqual([last]);
    const first = await page({ sort: 'name', descending: true, limit: 1 });
    expect(first.rows.map((row) => row.agent_name)).toEqual([last]);
    expect((await page({ sort: 'name', offset: FLEET + 10 })).rows).toEqual([]);
  });

  it('shows a non-operator nothing, refuses anon, and says what is wrong with a bad argument', async () => {
    const visitor = await page({}, { sub: randomUUID(), email: 'visitor@example.com' });
    expect([visitor.total, visitor.rows, visitor.statuses]).toEqual([0, [], {}]);
    await expect(asRole(db.sql, 'anon', {}, (tx) => tx`select public.dashboard_agent_page()`)).rejects.toThrow(/permission denied/);
    await expect(page({ sort: 'colour' })).rejects.toThrow(/sort must be status, name/);
    await expect(page({ status: 'sleeping' })).rejects.toThrow(/status must be running/);
    await expect(page({ limit: 1001 })).rejects.toThrow(/limit must be between 1 and 1000/);
    await expect(page({ offset: -1 })).rejects.toThrow(/offset must be 0 or more/);
  });
});

describe('operator_list_agents in keyset pages', () => {
  it('reads the pages after a name, none computed whole, and every agent without a limit', async () => {
    const all = await db.sql`select agent_name from public.operator_list_agents()`;
    expect(all.length).toBe(FLEET);
    const names: string[] = [];
    for (let after: string | null = null; ; ) {
      const rows = await db.sql`select agent_name from public.operator_list_agents(null, ${after}, 1000)`;
      names.push(...rows.map((row) => row.agent_name as string));
      if (rows.length < 1000) break;
      after = names.at(-1)!;
    }
    expect(names).toEqual(all.map((row) => row.agent_name));
    // a page is an index range of agent_status from the key on, not a pass over every agent
    // (the counters of this backend may still hold earlier statements' reads: the difference counts)
    const counters = (tx: Pick<Sql, 'unsafe'>) =>
      tx.unsafe(
        `select seq_tup_read::int + idx_tup_fetch::int as read from pg_stat_xact_user_tables where relid = 'public.agent_status'::regclass`,
      );
    const [before, after] = await db.sql.begin(async (tx) => {
      const [before] = await counters(tx);
      await tx`select count(*) from public.operator_list_agents(null, 'agent 02000', 10)`;
      const [after] = await counters(tx);
      return [before, after];
    });
    // about 10 names from the index and the 10 rows of the view by id, not the 2,500 agents
    expect(after.read - before.read).toBeLessThan(50);
    await expect(db.sql`select public.operator_list_agents(null, null, 0)`).rejects.toThrow(/limit must be between 1 and 10000/);
  });

  it('finds one agent by name or id reading that agent, not the list, and never an archived one', async () => {
    const [listed] = await db.sql`select * from public.operator_list_agents(null, 'agent 01233', 1)`;
    const byName = await db.sql`select * from public.operator_list_agents(p_name => 'agent 01234')`;
    const byId = await db.sql`select * from public.operator_list_agents(p_id => ${listed.id})`;
    expect(byName.map((row) => row.agent_name)).toEqual(['agent 01234']);
    expect(byId.map((row) => row.agent_name)).toEqual(['agent 01234']);
    expect((await db.sql`select * from public.operator_list_agents(p_name => 'agent 01234', p_id => ${listed.id + 1})`).length).toBe(0);
    expect((await db.sql`select * from public.operator_list_agents(p_name => 'zzz archived')`).length).toBe(0);
    expect((await db.sql`select * from public.operator_list_agents(p_name => 'Agent 01234')`).length).toBe(0);
    const reads = (lookup: string) =>
      db.sql.begin(async (tx) => {
        const counters = `select seq_tup_read::int + idx_tup_fetch::int as read from pg_stat_xact_user_tables where relid = 'public.agent_status'::regclass`;
        const [before] = await tx.unsafe(counters);
        // the plan PL/pgSQL may keep after five calls, made for any name and id, must still read by index
        await tx`set local plan_cache_mode = force_generic_plan`;
        await tx.unsafe(`select count(*) from public.operator_list_agents(${lookup})`);
        const [after] = await tx.unsafe(counters);
        return after.read - before.read;
      });
    // the agent, and its row again for the view: a few tuples, not the 2,500 agents
    expect(await reads(`p_name => 'agent 01234'`)).toBeLessThan(20);
    expect(await reads(`p_id => ${listed.id}`)).toBeLessThan(20);
  });
});

describe('dashboard_agent_page polls with the mark of its last answer', () => {
  // reads of agent_resources by this backend (the difference counts): the whole-fleet pass joins it
  // for every agent
  const resourceReads = async (tx: Sql) => {
    const [row] = await tx`select coalesce(seq_tup_read, 0)::int + coalesce(idx_tup_fetch, 0)::int as read
                           from pg_stat_xact_user_tables where relid = 'public.agent_resources'::regclass`;
    return row.read as number;
  };
  const poll = (since: Page['mark'], q: Query = {}) => page({ ...q, since });

  it('answers unchanged without the whole-fleet pass while nothing changed, its rows read again', async () => {
    const first = await page({ limit: 20 });
    expect(first.unchanged).toBeUndefined();
    expect(first.mark.ids).toEqual(first.rows.map((row) => row.id));
    const [again, view, read] = await asOperator(async (tx) => {
      const before = await resourceReads(tx);
      const again = await pageIn(tx, { limit: 20, since: first.mark });
      const read = (await resourceReads(tx)) - before;
      // the same now(): each row as the view reads it at this poll, in the first answer's order
      const view = await tx`select to_jsonb(l) - 'metadata' as row from public.agent_status_live l where id in ${tx(first.mark.ids)}`;
      return [again, view.map((v) => v.row), read] as const;
    });
    expect(again.unchanged).toBe(true);
    expect(read).toBe(0);
    expect(again.rows.map((row) => row.id)).toEqual(first.mark.ids);
    const byId = new Map(view.map((row) => [row.id, row]));
    expect(again.rows).toEqual(first.mark.ids.map((id) => byId.get(id)));
    expect(again.rows[0].observed_at).not.toBe(first.rows[0].observed_at);
    // and the mark it carries serves the poll after
    expect((await poll(again.mark, { limit: 20 })).unchanged).toBe(true);
  });

  it('runs the pass for another query or window, or a search, and refuses a mark that is not one', async () => {
    const first = await page({ limit: 20 });
    expect((await poll(first.mark, { limit: 21 })).unchanged).toBeUndefined();
    expect((await poll(first.mark, { limit: 20, offset: 20 })).unchanged).toBeUndefined();
    expect((await poll(first.mark, { limit: 20, sort: 'name' })).unchanged).toBeUndefined();
    await expect(poll({ ...first.mark, xid: 12 }, { limit: 20 })).rejects.toThrow(/since must be the mark of an earlier answer/);
    // searched: the view's sentences it matches move with the clock
    const searched = await page({ limit: 20, search: 'no heartbeat' });
    expect((await poll(searched.mark, { limit: 20, search: 'no heartbeat' })).unchanged).toBeUndefined();
  });

  it('sees every write since, also one that began before the answer and committed after later ones', async () => {
    // two agents the deadline leaves alone, and not in error yet
    const [a, b] = await db.sql`select id from public.agent_status
                                where archived_at is null and status <> 'error' and (stale_at is null or stale_at > now() + interval '1 minute')
                                order by id limit 2`;
    const early = await db.sql.reserve();
    const later = await db.sql.reserve();
    try {
      // `early` takes its transaction id first, `later` writes and commits, the dashboard reads...
      await early`begin`;
      await early`select pg_current_xact_id()`;
      await later`begin`;
      await later`update public.agent_status set health = 1, updated_at = now() where id = ${b.id}`;
      await later`commit`;
      const first = await page({ sort: 'name', limit: 5 });
      // ...then `early` writes and commits: earlier in xid and now() than `later`, later in commit order
      await early`update public.agent_status set health = 2, status = 'error', updated_at = now() where id = ${a.id}`;
      await early`commit`;
      const next = await poll(first.mark, { sort: 'name', limit: 5 });
      expect(next.unchanged).toBeUndefined();
      expect(next.statuses.error).toBe(first.statuses.error + 1);
      expect((await poll(next.mark, { sort: 'name', limit: 5 })).unchanged).toBe(true);
    } finally {
      early.release();
      later.release();
    }

    // an agent added, archived, deleted
    for (const write of [
      () => db.sql`insert into public.agent_status (agent_name) values ('mark new agent')`,
      () => db.sql`update public.agent_status set archived_at = now() where agent_name = 'mark new agent'`,
      () => db.sql`update public.agent_status set archived_at = null where agent_name = 'mark new agent'`,
      () => db.sql`delete from public.agent_status where agent_name = 'mark new agent'`,
    ]) {
      const before = await page({});
      await write();
      const after = await poll(before.mark);
      expect(after.unchanged).toBeUndefined();
      expect(after.total).not.toBe(before.total);
    }
  });

  it('sorted by CPU or memory, sees new figures; sorted otherwise, needs not', async () => {
    const byCpu = await page({ sort: 'cpu', limit: 10 });
    const byStatus = await page({ limit: 10 });
    const [resource] = await db.sql`select agent_id from public.agent_resources order by agent_id limit 1`;
    await db.sql`update public.agent_resources set cpu_percent = 99.5 where agent_id = ${resource.agent_id}`;
    expect((await poll(byCpu.mark, { sort: 'cpu', limit: 10 })).unchanged).toBeUndefined();
    expect((await poll(byStatus.mark, { limit: 10 })).unchanged).toBe(true);
  });

  it('runs the pass again once a deadline passed, with no write', async () => {
    await db.sql`insert into public.agent_status (agent_name, status, status_source, stale_at)
                 values ('mark deadline', 'running', 'agent', now() + interval '1.5 seconds')`;
    try {
      const first = await page({});
      expect(new Date(first.mark.deadline!).getTime()).toBeLessThan(Date.now() + 2000);
      expect((await poll(first.mark)).unchanged).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 1600));
      const next = await poll(first.mark);
      expect(next.unchanged).toBeUndefined();
      expect(next.statuses.stale).toBe(first.statuses.stale + 1);
      expect(next.statuses.running).toBe(first.statuses.running - 1);
    } finally {
      await db.sql`delete from public.agent_status where agent_name = 'mark deadline'`;
    }
  });

  it('runs the pass for a reader who became an operator since', async () => {
    const visitor = { sub: randomUUID(), email: 'newcomer@example.com' };
    const before = await page({}, visitor);
    expect(before.total).toBe(0);
    await db.sql`select public.add_operator(${visitor.email})`;
    const after = await page({ since: before.mark }, visitor);
    expect(after.unchanged).toBeUndefined();
    expect(after.total).toBe(FLEET);
  });
});
