// Who may do what: anon, a signed-in user who is not an operator, an operator, and the service role,
// over every table and function, as PostgREST would run them (SET ROLE plus JWT claims).
import { randomUUID } from 'node:crypto';
import { describe, expect, it, beforeAll } from 'vitest';
import type { Sql } from 'postgres';
import { asRole, useTestDatabase, type Role } from '../helpers/database.ts';
import { createToken, failure, registerRunner, setAgentState } from '../helpers/agents.ts';

type Who = 'anon' | 'user' | 'operator' | 'service';
const operatorId = randomUUID();
const userId = randomUUID();
const identities: Record<Who, { role: Role; claims: Record<string, unknown> }> = {
  anon: { role: 'anon', claims: {} },
  user: { role: 'authenticated', claims: { sub: userId, email: 'visitor@example.com' } },
  operator: { role: 'authenticated', claims: { sub: operatorId, email: 'Ops@Example.com' } },
  service: { role: 'service_role', claims: {} },
};

// 'ok' (with a row count where it matters), 'denied' (no privilege: 42501 or RLS refusal), or a SQLSTATE
type Outcome = 'ok' | 'denied' | 'empty' | 'rows' | `sqlstate ${string}`;

describe('row level security and grants', () => {
  const db = useTestDatabase();
  let agentToken: string;
  let runnerToken: string;
  let operatorToken: string;
  let metricsToken: string;
  let badgeKey: string;
  let agentId: number;
  let logRequestId: number;

  beforeAll(async () => {
    await setAgentState(db.sql, 'rls-agent', 'running');
    agentToken = await createToken(db.sql, 'agent', { agent: 'rls-agent' });
    runnerToken = await registerRunner(db.sql, 'rls-host', ['rls-agent']);
    // added by email before their first sign-in; matched case-insensitively
    await db.sql`select public.add_operator('ops@example.com')`;
    operatorToken = await createToken(db.sql, 'operator', { email: 'ops@example.com' });
    [{ token: metricsToken }] = await db.sql`select token from public.create_api_token('metrics')`;
    [{ token: badgeKey }] = await db.sql`select token from public.create_api_token('badge')`;
    await db.sql`select * from public.enqueue_agent_commands('start', 'rls-agent')`;
    [{ id: agentId }] = await db.sql`select id from public.agent_status where agent_name = 'rls-agent'`;
    await db.sql`select public.runner_report_resources(${runnerToken}, '[{"name": "rls-agent", "cpu_percent": 1, "memory_bytes": 1}]')`;
    [{ id: logRequestId }] = await db.sql`select public.request_agent_logs('rls-agent') as id`;
    await setAgentState(db.sql, 'rls-archivable', 'stopped');
  });

  async function run(who: Who, statement: (tx: Sql) => PromiseLike<readonly unknown[]>): Promise<Outcome> {
    const { role, claims } = identities[who];
    try {
      const rows = await asRole(db.sql, role, claims, statement);
      return rows.length === 0 ? 'empty' : 'rows';
    } catch (error) {
      const e = error as { code?: string; message: string };
      if (e.code === '42501') return 'denied';
      return `sqlstate ${e.code}`;
    }
  }

  const tables = [
    'agent_status',
    'agent_status_live',
    'agent_events',
    'agent_commands',
    'runners',
    'operators',
    'agent_status_settings',
    'agent_resources',
    'agent_resource_samples',
    'agent_log_requests',
  ];

  describe.each(tables)('select from %s', (table) => {
    it.each([
      ['anon', 'denied'],
      ['user', 'empty'],
      ['operator', 'rows'],
      ['service', 'rows'],
    ] as const)('%s: %s', async (who, expected) => {
      expect(await run(who, (tx) => tx`select * from ${tx(`public.${table}`)}`)).toBe(expected);
    });
  });

  it.each(['anon', 'user', 'operator'] as const)('%s cannot read api_tokens at all', async (who) => {
    expect(await run(who, (tx) => tx`select id from public.api_tokens`)).toBe('denied');
  });

  it('the service role reads tokens but never their hashes', async () => {
    expect(await run('service', (tx) => tx`select id, label, token_prefix from public.api_tokens`)).toBe('rows');
    expect(await run('service', (tx) => tx`select token_hash from public.api_tokens`)).toBe('denied');
  });

  describe.each(['agent_status', 'agent_events', 'runners', 'operators', 'agent_status_settings', 'api_tokens'])(
    'writes to %s',
    (table) => {
      it.each(['anon', 'user', 'operator'] as const)('%s may not update or delete', async (who) => {
        const column = { agent_events: 'kind', agent_status_settings: 'prune_batch' }[table] ?? 'id';
        expect(await run(who, (tx) => tx`update ${tx(`public.${table}`)} set ${tx(column)} = ${tx(column)} returning 1`)).toBe('denied');
        expect(await run(who, (tx) => tx`delete from ${tx(`public.${table}`)} returning 1`)).toBe('denied');
      });
    },
  );

  // Commands are queued only through enqueue_agent_commands (below), never by inserting directly.
  it.each(['anon', 'user', 'operator'] as const)('%s may not insert into agent_commands directly', async (who) => {
    expect(await run(who, (tx) => tx`insert into public.agent_commands (agent_id, action) values (${agentId}, 'stop') returning id`)).toBe(
      'denied',
    );
  });

  // requested_by names the operator as the operator list spells them (the direct insert used the
  // session's email, 'Ops@Example.com').
  it('a command an operator queues is pending, live, and names the operator; the trigger sets them', async () => {
    const row = await asRole(
      db.sql,
      'authenticated',
      identities.operator.claims,
      async (tx) =>
        (await tx`select status, requested_by, expires_at > now() as live from public.enqueue_agent_commands('stop', 'rls-agent')`)[0],
    );
    expect(row).toEqual({ status: 'pending', requested_by: 'operator ops@example.com', live: true });
  });

  const operatorFunctions: Record<string, (tx: Sql) => PromiseLike<readonly unknown[]>> = {
    force_agent_status: (tx) => tx`select public.force_agent_status('rls-agent', 'stopped', 0)`,
    reset_agent_restarts: (tx) => tx`select public.reset_agent_restarts('rls-agent')`,
    operator_alert_attempts: (tx) => tx`select count(*) from public.operator_alert_attempts(array[]::bigint[])`,
    enqueue_agent_commands: (tx) => tx`select * from public.enqueue_agent_commands('restart', 'rls-agent')`,
    create_api_token: (tx) => tx`select * from public.create_api_token('agent', p_agent_name => 'rls-new')`,
    list_api_tokens: (tx) => tx`select * from public.list_api_tokens()`,
    revoke_api_token: (tx) => tx`select * from public.revoke_api_token('00000000-0000-0000-0000-000000000000')`,
    add_operator: (tx) => tx`select public.add_operator('second@example.com')`,
    remove_operator: (tx) => tx`select public.remove_operator('nobody@example.com')`,
    operator_list_agents: (tx) => tx`select * from public.operator_list_agents()`,
    operator_agent_events: (tx) => tx`select * from public.operator_agent_events('rls-agent')`,
    operator_commands: (tx) => tx`select * from public.operator_commands(array[1, 2]::bigint[])`,
    operator_sweep_status: (tx) => tx`select public.operator_sweep_status()`,
    agent_availability: (tx) => tx`select public.agent_availability('rls-agent')`,
    agent_history: (tx) => tx`select * from public.agent_history('rls-agent')`,
    request_agent_logs: (tx) => tx`select public.request_agent_logs('rls-agent')`,
    operator_agent_logs: (tx) => tx`select * from public.operator_agent_logs(${logRequestId})`,
    archive_agent: (tx) => tx`select public.archive_agent('rls-archivable')`,
    set_agent_timeouts: (tx) => tx`select public.set_agent_timeouts('rls-agent', 60)`,
    alert_channel_save: (tx) => tx`select public.alert_channel_save('rls-hook', 'webhook', 'http://127.0.0.1:9/hook', 'whsec_rls_0123')`,
    alert_channel_rules: (tx) =>
      tx`select public.alert_channel_save('rls-hook', 'webhook', 'http://127.0.0.1:9/hook')`.then(
        () => tx`select public.alert_channel_rules('rls-hook', '{"grace_s": 60}')`,
      ),
    alert_channel_remove: (tx) =>
      tx`select public.alert_channel_save('rls-hook', 'webhook', 'http://127.0.0.1:9/hook')`.then(
        () => tx`select public.alert_channel_remove('rls-hook')`,
      ),
    alert_channel_test: (tx) =>
      tx`select public.alert_channel_save('rls-hook', 'webhook', 'http://127.0.0.1:9/hook')`.then(
        () => tx`select public.alert_channel_test('rls-hook')`,
      ),
    operator_alert_channels: (tx) =>
      tx`select public.alert_channel_save('rls-hook', 'webhook', 'http://127.0.0.1:9/hook')`.then(
        () => tx`select * from public.operator_alert_channels()`,
      ),
    operator_alert_deliveries: (tx) =>
      tx`select public.alert_channel_save('rls-hook', 'webhook', 'http://127.0.0.1:9/hook')`
        .then(() => tx`select public.alert_channel_test('rls-hook')`)
        .then(() => tx`select * from public.operator_alert_deliveries()`),
    operator_alert_pauses: (tx) =>
      tx`select public.alert_pause('rls-agent', null, null, 'maintenance')`.then(() => tx`select * from public.operator_alert_pauses()`),
    alert_pause: (tx) => tx`select public.alert_pause('rls-agent', null, null, 'maintenance')`,
    alert_resume: (tx) => tx`select public.alert_resume('rls-agent')`,
  };

  describe.each(Object.keys(operatorFunctions))('operator function %s', (fn) => {
    it.each([
      ['anon', 'denied'],
      ['user', 'denied'],
      ['operator', fn === 'revoke_api_token' ? 'sqlstate P0002' : 'rows'],
      ['service', fn === 'revoke_api_token' ? 'sqlstate P0002' : 'rows'],
    ] as const)('%s -> %s', async (who, expected) => {
      expect(await run(who, operatorFunctions[fn])).toBe(expected);
    });
  });

  it('an operator token lets an anonymous caller (a script, the CLI) act as that operator', async () => {
    const outcome = await run('anon', (tx) => tx`select public.force_agent_status('rls-agent', 'error', 5, 'by script', ${operatorToken})`);
    expect(outcome).toBe('rows');
    expect(await run('anon', (tx) => tx`select * from public.list_api_tokens(${agentToken})`)).toBe('sqlstate 28000');
  });

  const machineFunctions: Record<string, (tx: Sql) => PromiseLike<readonly unknown[]>> = {
    agent_heartbeat: (tx) => tx`select public.agent_heartbeat(${agentToken}, 'rls-agent')`,
    agent_report: (tx) => tx`select public.agent_report(${agentToken}, 'rls-agent', 'activity', p_activity => 'x')`,
    runner_heartbeat: (tx) => tx`select public.runner_heartbeat(${runnerToken})`,
    runner_claim_commands: (tx) => tx`select * from public.runner_claim_commands(${runnerToken})`,
    runner_report_resources: (tx) =>
      tx`select public.runner_report_resources(${runnerToken}, '[{"name": "rls-agent", "cpu_percent": 2, "memory_bytes": 2}]')`,
    runner_claim_log_requests: (tx) => tx`select * from public.runner_claim_log_requests(${runnerToken})`,
    runner_report_batch: (tx) =>
      tx`select public.runner_report_batch(${runnerToken}, '[{"agent_name": "rls-agent", "event": "activity", "last_activity": "x"}]')`,
    verify_api_token: (tx) => tx`select * from public.verify_api_token(${agentToken})`,
    // the read-only keys' readers (68_read_keys.sql)
    agent_metrics: (tx) => tx`select public.agent_metrics(${metricsToken})`,
    agent_badge: (tx) => tx`select public.agent_badge(${badgeKey}, 'rls-agent')`,
  };

  describe.each(Object.keys(machineFunctions))('machine function %s', (fn) => {
    it.each(['anon', 'user', 'operator', 'service'] as const)('%s with a valid token may call it', async (who) => {
      expect(await run(who, machineFunctions[fn])).not.toMatch(/denied|sqlstate/);
    });
  });

  it.each(['anon', 'user', 'operator', 'service'] as const)('%s without a valid token is refused by machine functions', async (who) => {
    expect(await run(who, (tx) => tx`select public.agent_heartbeat('asa_forged', 'rls-agent')`)).toBe('sqlstate 28000');
    expect(await run(who, (tx) => tx`select * from public.runner_claim_commands('asr_forged')`)).toBe('sqlstate 28000');
    expect(await run(who, (tx) => tx`select public.runner_register('asr_forged', '[]'::jsonb)`)).toBe('sqlstate 28000');
    expect(await run(who, (tx) => tx`select public.agent_metrics(${agentToken})`)).toBe('sqlstate 28000');
    expect(await run(who, (tx) => tx`select public.agent_badge(${metricsToken}, 'rls-agent')`)).toBe('sqlstate 28000');
  });

  it.each([
    ['anon', 'denied'],
    ['user', 'denied'],
    ['operator', 'denied'],
    ['service', 'rows'],
  ] as const)('the sweep: %s -> %s', async (who, expected) => {
    expect(await run(who, (tx) => tx`select public.agent_status_sweep()`)).toBe(expected);
  });

  it.each([
    ['anon', 'denied'],
    ['user', 'denied'],
    ['operator', 'denied'],
    ['service', 'rows'],
  ] as const)("the alert dispatcher's functions: %s -> %s", async (who, expected) => {
    expect(await run(who, (tx) => tx`select * from public.alert_claim('rls', 1)`)).toBe(expected === 'rows' ? 'empty' : expected);
    expect(await run(who, (tx) => tx`select public.alert_complete(1, 1, true)`)).toBe(expected);
    expect(await run(who, (tx) => tx`select public.alert_dispatch_authorized('x')`)).toBe(expected);
    expect(await run(who, (tx) => tx`select public.alert_complete_batch('[]')`)).toBe(expected);
  });

  it.each(['anon', 'user', 'operator'] as const)('%s cannot call private helpers', async (who) => {
    expect(await run(who, (tx) => tx`select agent_private.apply_event(${agentId}, 'force', 'operator', 'me', 'running')`)).toBe('denied');
    expect(await run(who, (tx) => tx`select agent_private.hash_token('x')`)).toBe('denied');
  });

  it('anon may execute exactly the token-checked functions, and nothing else of ours', async () => {
    const rows = await db.sql`
      select p.proname from pg_proc p
      where p.pronamespace = 'public'::regnamespace and has_function_privilege('anon', p.oid, 'execute')
        and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
      order by 1`;
    expect(rows.map((r) => r.proname)).toEqual(
      [
        ...Object.keys(machineFunctions),
        'runner_register',
        'runner_lease',
        'runner_offline',
        'runner_complete_command',
        'runner_answer_log_request',
        ...Object.keys(operatorFunctions),
      ].sort(),
    );
  });

  it('whoami tells a signed-in user whether they are an operator, and links their user id', async () => {
    expect(await run('anon', (tx) => tx`select public.whoami()`)).toBe('denied');
    const user = await asRole(db.sql, 'authenticated', identities.user.claims, async (tx) => (await tx`select public.whoami() as w`)[0].w);
    expect(user).toMatchObject({ signed_in: true, operator: false });
    await db.sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify({ role: 'authenticated', ...identities.operator.claims })}, true)`;
      await tx`set local role authenticated`;
      const [{ w }] = await tx`select public.whoami() as w`;
      expect(w).toMatchObject({ signed_in: true, operator: true });
    });
    const [op] = await db.sql`select user_id from public.operators where email = 'ops@example.com'`;
    expect(op.user_id).toBe(operatorId);
  });

  it('a force-set by an operator is recorded with who did it', async () => {
    await asRole(
      db.sql,
      'authenticated',
      identities.operator.claims,
      (tx) => tx`select public.force_agent_status('rls-agent', 'stopped', 0, 'process was killed by hand')`,
    );
    // asRole rolled it back; do it for real and read the history
    await db.sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${JSON.stringify({ role: 'authenticated', ...identities.operator.claims })}, true)`;
      await tx`set local role authenticated`;
      await tx`select public.force_agent_status('rls-agent', 'stopped', 0, 'process was killed by hand')`;
    });
    const [event] = await db.sql`select * from public.agent_events where agent_id = ${agentId} and kind = 'force' order by id desc limit 1`;
    expect(event).toMatchObject({
      source: 'operator',
      actor: 'operator ops@example.com',
      to_status: 'stopped',
      message: 'process was killed by hand',
    });
  });

  describe('a signed-in non-operator probing', () => {
    it('gets the same refusal for every agent id when inserting a command, naming no agent', async () => {
      const [{ max }] = await db.sql`select max(id)::int as max from public.agent_status`;
      const messages = new Set<string>();
      for (const id of [agentId, max + 1000, -1]) {
        const error = await asRole(db.sql, 'authenticated', identities.user.claims, (tx) =>
          tx`insert into public.agent_commands (agent_id, action) values (${id}, 'stop')`.then(
            () => undefined,
            (e: { code: string; message: string }) => e,
          ),
        );
        expect(error?.code).toBe('42501');
        messages.add(error!.message);
      }
      // one answer for every id (no insert privilege at all since the one command path), naming nothing
      expect(messages.size).toBe(1);
      expect([...messages][0]).not.toMatch(/rls-|agent '/);
    });

    it.each(Object.keys(operatorFunctions))('%s answers a refusal that names no row', async (fn) => {
      const error = await asRole(db.sql, 'authenticated', identities.user.claims, (tx) =>
        operatorFunctions[fn](tx).then(
          () => undefined,
          (e: { code: string; message: string }) => e,
        ),
      );
      expect(error?.code).toBe('42501');
      expect(error!.message).not.toMatch(/rls-|ops@|second@/);
    });
  });

  describe('operator tokens', () => {
    it("are made only for oneself: another operator's email is refused and no token is made", async () => {
      await db.sql`select public.add_operator('other@example.com')`;
      const [{ count: before }] = await db.sql`select count(*)::int from public.api_tokens`;
      for (const [role, claims, token] of [
        ['authenticated', identities.operator.claims, null],
        ['anon', {}, operatorToken],
      ] as const) {
        const error = await asRole(db.sql, role, claims, (tx) =>
          tx`select * from public.create_api_token('operator', p_operator_email => 'other@example.com', p_operator_token => ${token})`.then(
            () => undefined,
            (e: { code: string; message: string }) => e,
          ),
        );
        expect(error).toMatchObject({ code: '42501', message: 'an operator token can only be made for yourself' });
      }
      const [{ count: after }] = await db.sql`select count(*)::int from public.api_tokens`;
      expect(after).toBe(before);
      // one's own, with the email left out
      const own = await asRole(
        db.sql,
        'anon',
        {},
        (tx) => tx`select operator_email from public.create_api_token('operator', p_operator_token => ${operatorToken})`,
      );
      expect(own).toEqual([{ operator_email: 'ops@example.com' }]);
    });

    it('expire: an expired token is refused like a revoked one, and the list shows when', async () => {
      const [made] = await db.sql`
        select id, token, expires_at > now() + interval '89 days' as later
        from public.create_api_token('agent', p_agent_name => 'rls-agent', p_expires_in => '90 days')`;
      expect(made.later).toBe(true);
      await db.sql`select public.agent_heartbeat(${made.token}, 'rls-agent')`;
      // 91 days later
      await db.sql`update public.api_tokens set created_at = created_at - interval '91 days', expires_at = expires_at - interval '91 days'
                   where id = ${made.id}`;
      expect(await run('anon', (tx) => tx`select public.agent_heartbeat(${made.token}, 'rls-agent')`)).toBe('sqlstate 28000');
      const [listed] = await db.sql`select expires_at, last_used_at from public.list_api_tokens() where id = ${made.id}`;
      expect(listed.expires_at.getTime()).toBeLessThan(Date.now());
      expect(listed.last_used_at).not.toBeNull();
    });
  });

  it('a command sent again with the same idempotency key queues nothing new', async () => {
    const send = () => db.sql`select id from public.enqueue_agent_commands('restart', 'rls-agent', p_operator_token => ${operatorToken},
                                                                        p_idempotency_key => 'retry-1')`;
    const [first, second] = [await send(), await send()];
    expect(second).toEqual(first);
    const [{ count }] = await db.sql`select count(*)::int from public.agent_commands where idempotency_key = 'retry-1'`;
    expect(count).toBe(1);
    // another requester's same key is their own
    const [other] = await db.sql`select id from public.enqueue_agent_commands('restart', 'rls-agent', p_idempotency_key => 'retry-1')`;
    expect(other.id).not.toBe(first[0].id);
  });

  it('the same idempotency key with another request is refused (P0422), queuing nothing', async () => {
    await db.sql`select id from public.enqueue_agent_commands('restart', 'rls-agent', p_operator_token => ${operatorToken}, p_idempotency_key => 'reused-2')`;
    const refusal = await failure(
      db.sql`select id from public.enqueue_agent_commands('stop', 'rls-agent', p_operator_token => ${operatorToken}, p_idempotency_key => 'reused-2')`,
    );
    expect(refusal).toEqual({
      code: 'P0422',
      message: "idempotency key 'reused-2' was used for restart agent 'rls-agent'; this request is stop agent 'rls-agent'",
    });
    const [{ count }] = await db.sql`select count(*)::int from public.agent_commands where idempotency_key = 'reused-2'`;
    expect(count).toBe(1);
  });

  describe('the host lease', () => {
    it('refuses a second runner instance while the first is live, naming it; a takeover refuses the first at its next claim', async () => {
      const token = await registerRunner(db.sql, 'lease-host', []);
      await db.sql`select public.runner_lease(${token}, 'instance-a', 4242)`;
      const refused = await failure(db.sql`select public.runner_lease(${token}, 'instance-b', 5151)`);
      expect(refused?.code).toBe('55000');
      expect(refused?.message).toMatch(/another runner is live on host 'lease-host': pid 4242, running since .*, last seen \d+ s ago/);
      // the same instance (a restarted runner with its state folder) takes it back at once
      await db.sql`select public.runner_lease(${token}, 'instance-a', 4343)`;
      const [taken] = await db.sql`select public.runner_lease(${token}, 'instance-b', 5151, true) as lease`;
      expect(taken.lease).toMatchObject({ took_over: true, previous_instance: 'instance-a' });
      expect((await failure(db.sql`select * from public.runner_claim_commands(${token}, 10, 'instance-a')`))?.message).toMatch(
        /this runner no longer holds the lease of host 'lease-host': pid 5151 took over/,
      );
      await db.sql`select public.runner_offline(${token}, 'instance-a')`;
      const [row] = await db.sql`select status, instance from public.runners where host = 'lease-host'`;
      expect(row).toEqual({ status: 'online', instance: 'instance-b' });
    });

    it('register, claim and complete need the lease while a live runner holds it: with no instance or another one they are refused and change nothing', async () => {
      const token = await registerRunner(db.sql, 'held-host', ['held-agent']);
      await db.sql`select public.runner_lease(${token}, 'holder', 4242)`;
      await db.sql`select public.runner_register(${token}, ${db.sql.json([{ name: 'held-agent' }])}, '1.0', 4242, 'holder')`;
      await setAgentState(db.sql, 'held-agent', 'running');
      await db.sql`select id from public.enqueue_agent_commands('restart', 'held-agent')`;
      const [claimed] = await db.sql`select * from public.runner_claim_commands(${token}, 10, 'holder')`;
      await db.sql`select id from public.enqueue_agent_commands('stop', 'held-agent')`;
      const before = await db.sql`select r.pid, r.version, a.runner_id, c.status
        from public.runners r join public.agent_status a on a.runner_id = r.id join public.agent_commands c on c.agent_id = a.id
        where r.host = 'held-host' order by c.id`;
      for (const instance of [null, 'intruder']) {
        for (const call of [
          db.sql`select public.runner_register(${token}, '[]'::jsonb, 'evil', 1, ${instance})`,
          db.sql`select * from public.runner_claim_commands(${token}, 10, ${instance})`,
          db.sql`select public.runner_complete_command(${token}, ${claimed.id}, false, 'faked', ${instance})`,
        ]) {
          expect((await failure(call))?.code, `instance ${instance}`).toBe('55000');
        }
      }
      const after = await db.sql`select r.pid, r.version, a.runner_id, c.status
        from public.runners r join public.agent_status a on a.runner_id = r.id join public.agent_commands c on c.agent_id = a.id
        where r.host = 'held-host' order by c.id`;
      expect(after).toEqual(before);
      await db.sql`select public.runner_complete_command(${token}, ${claimed.id}, true, 'restarted', 'holder')`;
    });

    it('a runner token naming no agents may not take an agent with its own agent token, nor one of another host', async () => {
      await setAgentState(db.sql, 'self-reporting', 'running');
      await createToken(db.sql, 'agent', { agent: 'self-reporting' });
      await registerRunner(db.sql, 'owner-host', ['owned-elsewhere']);
      const token = await createToken(db.sql, 'runner', { host: 'grabbing-host' });
      for (const [name, owner] of [
        ['self-reporting', 'its own agent token'],
        ['owned-elsewhere', "host 'owner-host'"],
      ]) {
        const refused = await failure(db.sql`select public.runner_register(${token}, ${db.sql.json([{ name }])})`);
        expect(refused).toEqual({
          code: '42501',
          message: `runner token ${refused?.message.split(' ')[2]} may not take agent '${name}': it belongs to ${owner}`,
        });
      }
      const [grabbed] =
        await db.sql`select count(*)::int from public.agent_status a join public.runners r on r.id = a.runner_id where r.host = 'grabbing-host'`;
      expect(grabbed.count).toBe(0);
      // a token that names the agent is fine
      const naming =
        await db.sql`select token from public.create_api_token('runner', p_host => 'grabbing-host', p_agents => ${['self-reporting']})`;
      await db.sql`select public.runner_register(${naming[0].token}, ${db.sql.json([{ name: 'self-reporting' }])})`;
    });

    it("a runner token naming no agents speaks for its host's agents, and adds new names only when made to", async () => {
      await registerRunner(db.sql, 'scoped-host', ['scoped-known']);
      const scoped = await createToken(db.sql, 'runner', { host: 'scoped-host' });
      const refused = await failure(
        db.sql`select public.runner_register(${scoped}, ${db.sql.json([{ name: 'scoped-known' }, { name: 'minted' }])})`,
      );
      expect(refused).toEqual({
        code: '42501',
        message: `runner token scoped-host may not add agent 'minted': it speaks for the agents host 'scoped-host' already has, and adds new names only when made with --new-agents`,
      });
      expect(await db.sql`select 1 from public.agent_status where agent_name = 'minted'`).toHaveLength(0);
      // its host's agents it registers (the runner restarts with the same config)
      const [known] = await db.sql`select public.runner_register(${scoped}, ${db.sql.json([{ name: 'scoped-known' }])}) as r`;
      expect(known.r.agents).toEqual(['scoped-known']);
      const adding = await createToken(db.sql, 'runner', { host: 'scoped-host', newAgents: true });
      const [added] =
        await db.sql`select public.runner_register(${adding}, ${db.sql.json([{ name: 'scoped-known' }, { name: 'minted' }])}) as r`;
      expect(added.r.agents).toEqual(['scoped-known', 'minted']);
      const [listed] = await db.sql`select agents, new_agents from public.list_api_tokens() where host = 'scoped-host' order by created_at`;
      expect(listed).toEqual({ agents: ['*'], new_agents: false });
    });

    it('one registration adds at most 100 new agent names, whatever its token allows', async () => {
      const token = await registerRunner(db.sql, 'minting-host', []);
      const names = (count: number, from = 0) => db.sql.json(Array.from({ length: count }, (_, i) => ({ name: `minted-${from + i}` })));
      const refused = await failure(db.sql`select public.runner_register(${token}, ${names(101)})`);
      expect(refused).toEqual({ code: '22023', message: 'one registration may add at most 100 new agents, got 101 new names' });
      expect(await db.sql`select 1 from public.agent_status where agent_name like 'minted-%'`).toHaveLength(0);
      await db.sql`select public.runner_register(${token}, ${names(100)})`;
      // the next start adds the rest: 100 known and 100 new
      await db.sql`select public.runner_register(${token}, ${names(200)})`;
      expect(await db.sql`select 1 from public.agent_status where agent_name like 'minted-%'`).toHaveLength(200);
    });
  });

  describe('archiving an agent', () => {
    it('hides it from every list, keeps its history, revokes its tokens and frees its name; a live agent is refused', async () => {
      await setAgentState(db.sql, 'rls-retired', 'stopped');
      const token = await createToken(db.sql, 'agent', { agent: 'rls-retired' });
      await db.sql`select public.agent_report(${token}, 'rls-retired', 'started')`;
      await db.sql`select public.agent_report(${token}, 'rls-retired', 'stopped')`;
      const [{ id }] = await db.sql`select id from public.agent_status where agent_name = 'rls-retired'`;
      const [{ count: history }] = await db.sql`select count(*)::int from public.agent_events where agent_id = ${id}`;

      const refused = await failure(db.sql`select public.archive_agent('rls-agent', ${operatorToken})`);
      expect(refused).toMatchObject({ code: '55000', message: "agent 'rls-agent' is running; stop it before archiving it" });

      const [{ archived }] = await db.sql`select public.archive_agent('rls-retired', ${operatorToken}) as archived`;
      expect(archived).toMatchObject({ agent_name: 'rls-retired', archived_as: `rls-retired [archived ${id}]`, tokens_revoked: 1 });
      const seen = await asRole(db.sql, 'authenticated', identities.operator.claims, async (tx) => ({
        live: (await tx`select id from public.agent_status_live where id = ${id}`).length,
        table: (await tx`select id from public.agent_status where id = ${id}`).length,
        events: (await tx`select id from public.agent_events where agent_id = ${id}`).length,
        listed: (await tx`select id from public.operator_list_agents() where id = ${id}`).length,
      }));
      expect(seen).toEqual({ live: 0, table: 0, events: history + 1, listed: 0 });
      expect((await failure(db.sql`select public.agent_heartbeat(${token}, 'rls-retired')`))?.code).toBe('28000');
      expect((await failure(db.sql`select public.archive_agent('rls-retired', ${operatorToken})`))?.code).toBe('P0002');
      // the name is free for a new agent
      await createToken(db.sql, 'agent', { agent: 'rls-retired' });
      const rows =
        await db.sql`select id, archived_at is not null as archived from public.agent_status where agent_name like 'rls-retired%' order by id`;
      expect(rows).toEqual([
        { id, archived: true },
        { id: expect.any(Number), archived: false },
      ]);
    });
  });
});
