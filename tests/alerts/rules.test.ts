// The alert rules in Postgres, on this file's own database: which flips become deliveries in the
// outbox, and which are folded, delayed, cancelled or held back. The dispatcher that sends them runs
// in dispatch.test.ts; here the outbox itself is the observable.
import postgres from 'postgres';
import { describe, expect, it, beforeAll } from 'vitest';
import { useTestDatabase, asRole } from '../helpers/database.ts';
import { createToken, registerRunner, setAgentState, failure } from '../helpers/agents.ts';

const db = useTestDatabase();

async function channel(name: string, rules: Record<string, unknown> = {}, kind = 'webhook') {
  await db.sql`select public.alert_channel_save(${name}, ${kind}, ${`http://127.0.0.1:9/${name}`}, 'whsec_0123456789abcdef')`;
  await db.sql`select public.alert_channel_rules(${name}, ${db.sql.json({ flap_threshold: 0, ...rules })})`;
}

async function apply(agent: string, event: string, message: string | null = null) {
  await db.sql`
    select agent_private.apply_event(id, ${event}, 'agent', 'test', p_message => ${message}) from public.agent_status
    where agent_name = ${agent}`;
}

/** Makes an agent go stale the way the sweep does: its deadline passes, the sweep persists it. */
async function goStale(agent: string) {
  await db.sql`update public.agent_status set stale_at = now() - interval '1 second' where agent_name = ${agent}`;
  await db.sql`select public.agent_status_sweep()`;
}

async function deliveries(channelName: string) {
  return db.sql`
    select d.kind, d.status, d.notice, d.due_at > now() as delayed from public.alert_deliveries d
    join public.alert_channels c on c.id = d.channel_id where c.name = ${channelName} order by d.id`;
}

describe('saving a channel with its rules', () => {
  it('is one transaction: a refused rule leaves neither a new channel nor a change to an old one', async () => {
    const save = (name: string, endpoint: string, rules: Record<string, string[] | number>) =>
      failure(
        db.sql`select public.alert_channel_save(${name}, 'webhook', ${endpoint}, 'whsec_0123456789abcdef', p_rules => ${db.sql.json(rules)})`,
      );
    expect(await save('half-saved', 'http://127.0.0.1:9/new', { grace_s: -5 })).toMatchObject({
      code: '22023',
      message: expect.stringMatching(/^bad rules/),
    });
    expect(await db.sql`select 1 from public.alert_channels where name = 'half-saved'`).toEqual([]);

    expect(await save('kept', 'http://127.0.0.1:9/first', { grace_s: 60, agents: ['scraper-*'] })).toBeUndefined();
    expect(await save('kept', 'http://127.0.0.1:9/second', { reminder_s: 1 })).toMatchObject({ code: '22023' });
    const [kept] = await db.sql`select endpoint, grace_s, agent_patterns, reminder_s from public.alert_channels where name = 'kept'`;
    expect(kept).toEqual({ endpoint: 'http://127.0.0.1:9/first', grace_s: 60, agent_patterns: ['scraper-*'], reminder_s: null });
  });
});

describe('flips into the outbox', () => {
  beforeAll(async () => {
    await channel('all');
    await channel('errors-only', { flips: ['error'], agents: ['scraper-*'] });
  });

  it('a flip to error writes one delivery per matching channel, in the same transaction', async () => {
    await setAgentState(db.sql, 'scraper-1', 'running');
    await apply('scraper-1', 'error', 'database refused the connection');
    const all = await deliveries('all');
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ kind: 'down', status: 'pending', delayed: false });
    expect(all[0].notice).toMatchObject({
      kind: 'down',
      severity: 'critical',
      title: 'scraper-1 is down: error',
      text: 'database refused the connection',
      agent: 'scraper-1',
      status: 'error',
      previous_status: 'running',
    });
    expect(await deliveries('errors-only')).toHaveLength(1);
  });

  it('a rolled back flip leaves no delivery behind', async () => {
    await setAgentState(db.sql, 'scraper-2', 'running');
    const rollback = new Error('rollback');
    await expect(
      db.sql.begin(async (tx) => {
        await tx`select agent_private.apply_event(id, 'error', 'agent', 'test') from public.agent_status where agent_name = 'scraper-2'`;
        throw rollback;
      }),
    ).rejects.toBe(rollback);
    const [{ n }] = await db.sql`select count(*)::int as n from public.alert_deliveries where notice ->> 'agent' = 'scraper-2'`;
    expect(n).toBe(0);
  });

  it('filters by flip kind and agent pattern', async () => {
    await setAgentState(db.sql, 'mailer', 'running');
    await apply('mailer', 'error');
    await setAgentState(db.sql, 'scraper-3', 'running');
    await goStale('scraper-3');
    const errorsOnly = (await deliveries('errors-only')).map((d) => d.notice.agent);
    expect(errorsOnly).not.toContain('mailer');
    expect(errorsOnly).not.toContain('scraper-3');
    const all = (await deliveries('all')).map((d) => `${d.notice.agent}:${d.notice.status}`);
    expect(all).toEqual(expect.arrayContaining(['mailer:error', 'scraper-3:stale']));
  });

  it('error after stale is the same incident: no second notice', async () => {
    const before = (await deliveries('all')).length;
    await apply('scraper-3', 'error', 'it woke up failing');
    expect(await deliveries('all')).toHaveLength(before);
  });

  it('a recovery is told even when the channel stopped matching the agent during the incident', async () => {
    await channel('narrowed', { agents: ['narrow-*'] });
    await setAgentState(db.sql, 'narrow-1', 'running');
    await apply('narrow-1', 'error');
    await db.sql`select public.alert_channel_rules('narrowed', '{"agents": ["other-*"]}')`;
    await apply('narrow-1', 'running');
    expect((await deliveries('narrowed')).map((d) => d.kind)).toEqual(['down', 'up']);
  });

  it('recovery after a down notice is always told, with the same incident key', async () => {
    await apply('scraper-1', 'running');
    const rows = (await deliveries('all')).filter((d) => d.notice.agent === 'scraper-1');
    expect(rows.map((d) => d.kind)).toEqual(['down', 'up']);
    expect(rows[1].notice).toMatchObject({ title: 'scraper-1 recovered: running', severity: 'resolved' });
    expect(rows[1].notice.incident).toBe(rows[0].notice.incident);
  });
});

describe('grace delay', () => {
  beforeAll(() => channel('patient', { grace_s: 300, agents: ['graceful'] }));

  it('holds the down notice until the grace delay is over', async () => {
    await setAgentState(db.sql, 'graceful', 'running');
    await apply('graceful', 'error', 'blip');
    expect(await deliveries('patient')).toEqual([expect.objectContaining({ kind: 'down', status: 'pending', delayed: true })]);
  });

  it('a recovery within the grace delay cancels it silently', async () => {
    await apply('graceful', 'running');
    const rows = await deliveries('patient');
    expect(rows.map((d) => `${d.kind}:${d.status}`)).toEqual(['down:cancelled']);
  });
});

describe('flapping', () => {
  beforeAll(() => channel('flaps', { flap_threshold: 3, flap_window_s: 600, agents: ['flappy'] }));

  it('the third down flip within the window becomes one "flapping" notice; further flips stay quiet', async () => {
    await setAgentState(db.sql, 'flappy', 'running');
    for (let i = 0; i < 6; i++) {
      await apply('flappy', 'error', `crash ${i}`);
      await apply('flappy', 'running');
    }
    const kinds = (await deliveries('flaps')).map((d) => d.kind);
    expect(kinds).toEqual(['down', 'up', 'down', 'up', 'flapping']);
  });

  it('when it calms down, one notice says how it ended', async () => {
    await db.sql`update agent_private.alert_states set flapping_until = now() - interval '1 second'
                 where agent_id = (select id from public.agent_status where agent_name = 'flappy')`;
    await db.sql`select agent_private.alert_tick()`;
    const last = (await deliveries('flaps')).at(-1)!;
    expect(last).toMatchObject({ kind: 'up' });
    expect(last.notice.text).toMatch(/stable again/);
  });
});

describe('host grouping', () => {
  beforeAll(() => channel('hosts', { hosts: ['rack-7'] }));

  it('a runner with 50 agents going silent makes one "host silent" notice per channel, not 50', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `worker-${i}`);
    const token = await registerRunner(db.sql, 'rack-7', names);
    await db.sql`update public.agent_status set host = 'rack-7' where agent_name like 'worker-%'`;
    for (const name of names) await setAgentState(db.sql, name, 'running');
    await db.sql`select public.runner_heartbeat(${token}, null)`;
    // The runner stops answering; its agents' deadlines and its own pass, and the sweep runs.
    await db.sql`update public.runners set last_seen_at = now() - interval '10 minutes' where host = 'rack-7'`;
    await db.sql`update public.agent_status set stale_at = now() - interval '1 second' where agent_name like 'worker-%'`;
    await db.sql`select public.agent_status_sweep()`;
    const rows = await deliveries('hosts');
    expect(rows.map((d) => d.kind)).toEqual(['host_down']);
    expect(rows[0].notice).toMatchObject({ title: 'host rack-7 is silent: 50 agents', agents: 50, host: 'rack-7' });
  });

  it('its return is one "host back" notice, and its agents recover without one each', async () => {
    const [{ token }] = await db.sql`select token from public.create_api_token('runner', null, null, 'rack-7', null)`;
    await db.sql`select public.runner_heartbeat(${token}, ${db.sql.json(Array.from({ length: 50 }, (_, i) => ({ name: `worker-${i}` })))})`;
    const rows = await deliveries('hosts');
    expect(rows.map((d) => d.kind)).toEqual(['host_down', 'host_up']);
    // what each agent reads once the heartbeat that ends the silence relayed them (issue 19)
    expect(rows[1].notice.title).toBe('host rack-7 is back: 50 agents (50 running)');
  });
});

describe('snooze and maintenance', () => {
  beforeAll(() => channel('pager', { agents: ['nightly'] }));

  it('flips during a pause are recorded but not sent, and the pause is an event', async () => {
    await setAgentState(db.sql, 'nightly', 'running');
    await db.sql`select public.alert_pause('nightly', null, now() + interval '1 hour', 'migrating the database')`;
    await apply('nightly', 'error', 'maintenance');
    expect(await deliveries('pager')).toEqual([]);
    const events = await db.sql`
      select kind, message from public.agent_events where agent_id = (select id from public.agent_status where agent_name = 'nightly')
      order by id`;
    expect(events.map((e) => e.kind)).toEqual(expect.arrayContaining(['alerts_paused', 'error']));
    const [paused] = await db.sql`select * from public.agent_alerts_paused where agent_name = 'nightly'`;
    expect(paused).toMatchObject({ reason: 'migrating the database' });
  });

  it('a still-down agent alerts when the pause ends', async () => {
    await db.sql`update public.alert_pauses set until = now() - interval '1 second' where ended_at is null`;
    await db.sql`select agent_private.alert_tick()`;
    const rows = await deliveries('pager');
    expect(rows.map((d) => d.kind)).toEqual(['down']);
    expect(rows[0].notice.after_pause).toBe(true);
    const [{ n }] = await db.sql`select count(*)::int as n from public.agent_alerts_paused where agent_name = 'nightly'`;
    expect(n).toBe(0);
  });

  it('a recovery is told even during a pause once its down notice went out', async () => {
    await db.sql`select public.alert_pause('nightly', null, null, 'quiet please')`;
    await apply('nightly', 'running');
    expect((await deliveries('pager')).map((d) => d.kind)).toEqual(['down', 'up']);
    expect((await db.sql`select public.alert_resume('nightly') as n`)[0].n).toBe(1);
  });
});

describe('secrets', () => {
  it('operators read channels back only masked', async () => {
    await db.sql`select public.alert_channel_save('slack-ops', 'slack', 'https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX9f2a')`;
    const operatorToken = await createToken(db.sql, 'operator', { email: 'ops@example.com' }).catch(async () => {
      await db.sql`select public.add_operator('ops@example.com')`;
      return createToken(db.sql, 'operator', { email: 'ops@example.com' });
    });
    const rows = await asRole(db.sql, 'anon', {}, (tx) => tx`select * from public.operator_alert_channels(${operatorToken})`);
    const slack = rows.find((r) => r.name === 'slack-ops')!;
    expect(slack.endpoint).toBe('https://hooks.slack.com/••••9f2a');
    const hook = rows.find((r) => r.name === 'all')!;
    expect(hook.secret).toBe('••••cdef');
    expect(JSON.stringify(rows)).not.toMatch(/XXXXsecret|whsec_0123/);
  });

  it('signed-in operators cannot select the channels table, anon cannot call the operator functions', async () => {
    const [{ id: userId }] = await db.sql`select gen_random_uuid() as id`;
    const denied = await failure(
      asRole(db.sql, 'authenticated', { sub: userId, email: 'ops@example.com' }, (tx) => tx`select secret from public.alert_channels`),
    );
    expect(denied?.code).toBe('42501');
    const anon = await failure(asRole(db.sql, 'anon', {}, (tx) => tx`select * from public.operator_alert_channels()`));
    expect(anon?.code).toBe('42501');
    const claim = await failure(asRole(db.sql, 'authenticated', { sub: userId }, (tx) => tx`select * from public.alert_claim('x', 1)`));
    expect(claim?.code).toBe('42501');
  });

  it('refuses a channel that cannot work, saying what is missing', async () => {
    const bad = await failure(db.sql`select public.alert_channel_save('tg', 'telegram', null, 'bot-token')`);
    expect(bad).toMatchObject({ code: '22023' });
    expect(bad!.message).toMatch(/chat_id/);
  });
});

describe('the outbox stays cheap to prune', () => {
  it('pruning history and deleting agents find their deliveries by index, not by scanning the outbox', async () => {
    for (const lookup of ['event_id', 'agent_id']) {
      const plan = await db.sql.begin(async (tx) => {
        await tx`set local enable_seqscan = off`;
        return tx.unsafe(`explain (format json) select 1 from public.alert_deliveries where ${lookup} = 1`);
      });
      expect(JSON.stringify(plan), lookup).not.toContain('Seq Scan');
    }
  });
});

describe('crash loops (the runner restarting an agent that keeps dying)', () => {
  beforeAll(async () => {
    await channel('loops', { agents: ['looper'] });
    await channel('loops-only', { agents: ['looper'], flips: ['crash_loop'] });
  });

  async function crash(exitCode: number) {
    await db.sql`
      select agent_private.apply_event(id, 'crashed', 'runner', 'test', p_exit_code => ${exitCode},
                                       p_message => ${`exit ${exitCode}`}, p_details => '{"restart_in_s": 1}')
      from public.agent_status where agent_name = 'looper'`;
  }

  it('one down notice at the first crash, one crash-looping notice, none per restart, one recovery when stable', async () => {
    await setAgentState(db.sql, 'looper', 'running');
    await crash(1);
    for (let i = 0; i < 4; i++) {
      await apply('looper', 'started');
      await crash(i < 2 ? 1 : 2);
    }
    await apply('looper', 'started');
    expect((await db.sql`select status from public.agent_status where agent_name = 'looper'`)[0].status).toBe('warning');
    await apply('looper', 'stable');
    const rows = await deliveries('loops');
    expect(rows.map((d) => d.kind)).toEqual(['down', 'down', 'up']);
    expect(rows[1].notice).toMatchObject({ crash_loop: true });
    expect(rows[1].notice.title).toMatch(/^looper is crash-looping: \d+ restarts in 10 min$/);
    expect(new Set(rows.map((d) => d.notice.incident)).size).toBe(1);
    const only = await deliveries('loops-only');
    expect(only.map((d) => d.kind)).toEqual(['down', 'up']);
  });
});

describe('reminders and host pauses', () => {
  beforeAll(async () => {
    await channel('nag', { agents: ['stuck'], reminder_s: 600 });
    await channel('racks', { hosts: ['rack-3'], agents: ['nobody-*'] });
  });

  it('reminds while still down, only after the down notice was delivered, then every reminder_s', async () => {
    await setAgentState(db.sql, 'stuck', 'running');
    await apply('stuck', 'error', 'disk full');
    const tickAfter = async (minutes: number) => {
      await db.sql`update agent_private.alert_states set last_notified_at = now() - make_interval(mins => ${minutes})
                   where agent_id = (select id from public.agent_status where agent_name = 'stuck')`;
      await db.sql`select agent_private.alert_tick()`;
    };
    await tickAfter(11);
    expect((await deliveries('nag')).map((d) => d.kind)).toEqual(['down']);
    await db.sql`update public.alert_deliveries set status = 'delivered', finished_at = now() where notice ->> 'agent' = 'stuck'`;
    await tickAfter(11);
    await tickAfter(5);
    const rows = await deliveries('nag');
    expect(rows.map((d) => d.kind)).toEqual(['down', 'reminder']);
    expect(rows[1].notice).toMatchObject({ title: 'stuck is still down: error', incident: rows[0].notice.incident });
  });

  it('a paused host going offline is not told; it is when the pause ends and it is still silent', async () => {
    await registerRunner(db.sql, 'rack-3', []);
    await db.sql`select public.alert_pause(null, 'rack-3', null, 'moving racks')`;
    // silent (the sweep finds it past its deadline); a goodbye (runner_offline) is a stop, no incident
    await db.sql`update public.runners set last_seen_at = now() - interval '10 minutes' where host = 'rack-3'`;
    await db.sql`select public.agent_status_sweep()`;
    expect(await deliveries('racks')).toEqual([]);
    await db.sql`select public.alert_resume(null, 'rack-3')`;
    const rows = await deliveries('racks');
    expect(rows.map((d) => d.kind)).toEqual(['host_down']);
    expect(rows[0].notice.text).toBe('still silent when the pause ended');
  });
});

describe('waking the dispatcher through pg_net', () => {
  // pg_net is not installed here: a stand-in with net.http_post's signature records the calls it gets.
  beforeAll(async () => {
    await db.sql.unsafe(`
      create schema if not exists net;
      create table net.calls (url text, headers jsonb);
      create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
                                    headers jsonb default '{}', timeout_milliseconds integer default 5000)
        returns bigint language sql as $$ insert into net.calls values (url, headers) returning 1::bigint $$;`);
    await db.sql`select public.alert_configure_dispatch('https://project.example/functions/v1/dispatch', 'wake-key-0123456789')`;
    await channel('woken', { agents: ['wake-*'] });
  });

  it('once per transaction, with the dispatch key, however many deliveries it queued', async () => {
    await db.sql`insert into public.agent_status (agent_name, status) select 'wake-' || i, 'running' from generate_series(1, 20) i`;
    await db.sql`select agent_private.apply_event(id, 'error', 'agent', 'test') from public.agent_status where agent_name like 'wake-%'`;
    expect((await deliveries('woken')).length).toBe(20);
    const calls = await db.sql`select url, headers from net.calls`;
    expect(calls).toEqual([
      {
        url: 'https://project.example/functions/v1/dispatch',
        headers: { 'content-type': 'application/json', authorization: 'Bearer wake-key-0123456789' },
      },
    ]);
  });

  it('not at all while the URL is set and no key is, and says what is missing', async () => {
    await db.sql`select public.alert_configure_dispatch('https://project.example/functions/v1/dispatch')`;
    await db.sql`delete from net.calls`;
    const warnings: string[] = [];
    const listening = postgres(db.url, { max: 1, onnotice: (notice) => warnings.push(notice.message) });
    try {
      await listening`select agent_private.alert_wake()`;
    } finally {
      await listening.end();
    }
    expect(await db.sql`select * from net.calls`).toEqual([]);
    expect(warnings).toEqual([expect.stringMatching(/dispatch URL is set but there is no dispatch key/)]);
  });
});
