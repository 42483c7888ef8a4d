// Who may do what: anon, a signed-in user who is not an operator, an operator, and the service role,
// over every table and function, as PostgREST would run them (SET ROLE plus JWT claims).
import { randomUUID } from 'node:crypto';
import { describe, expect, it, beforeAll } from 'vitest';
import type { Sql } from 'postgres';
import { asRole, useTestDatabase, type Role } from '../helpers/database.ts';
import { createToken, registerRunner, setAgentState } from '../helpers/agents.ts';

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
  let agentId: number;

  beforeAll(async () => {
    await setAgentState(db.sql, 'rls-agent', 'running');
    agentToken = await createToken(db.sql, 'agent', { agent: 'rls-agent' });
    runnerToken = await registerRunner(db.sql, 'rls-host', ['rls-agent']);
    // added by email before their first sign-in; matched case-insensitively
    await db.sql`select public.add_operator('ops@example.com')`;
    operatorToken = await createToken(db.sql, 'operator', { email: 'ops@example.com' });
    await db.sql`select * from public.enqueue_agent_commands('start', 'rls-agent')`;
    [{ id: agentId }] = await db.sql`select id from public.agent_status where agent_name = 'rls-agent'`;
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

  const tables = ['agent_status', 'agent_status_live', 'agent_events', 'agent_commands', 'runners', 'operators', 'agent_status_settings'];

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
    verify_api_token: (tx) => tx`select * from public.verify_api_token(${agentToken})`,
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
        'runner_offline',
        'runner_complete_command',
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
});
