// Bad input gets a clear error and changes nothing: the database refuses it itself, whatever the
// caller validated before.
import { describe, expect, it, beforeAll } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { createToken, failure, registerRunner, setAgentState } from '../helpers/agents.ts';

describe('bad input changes nothing and says why', () => {
  const db = useTestDatabase();
  let tokenA: string;
  let tokenB: string;
  let snapshot: string;

  async function state() {
    const [row] = await db.sql`
      select (select json_agg(a order by id)::text from public.agent_status a) as agents,
             (select count(*) from public.agent_events) as events,
             (select count(*) from public.agent_commands) as commands`;
    return JSON.stringify(row);
  }

  beforeAll(async () => {
    await setAgentState(db.sql, 'agent-a', 'running');
    await setAgentState(db.sql, 'agent-b', 'running');
    tokenA = await createToken(db.sql, 'agent', { agent: 'agent-a' });
    tokenB = await createToken(db.sql, 'agent', { agent: 'agent-b' });
    snapshot = await state();
  });

  async function refused(statement: Promise<unknown>, code: string, message: RegExp) {
    const error = await failure(statement);
    expect(error, 'the statement must fail').toBeDefined();
    expect(error!.code).toBe(code);
    expect(error!.message).toMatch(message);
    expect(await state(), 'nothing was written').toBe(snapshot);
  }

  it.each([101, -1])('health %s', async (health) => {
    await refused(
      db.sql`select public.agent_heartbeat(${tokenA}, 'agent-a', p_health => ${health})`,
      '22023',
      new RegExp(`health must be between 0 and 100, got ${health}`),
    );
    await refused(db.sql`select public.agent_report(${tokenA}, 'agent-a', 'warning', 'slow', ${health})`, '22023', /health/);
  });

  it('health that is not a number', async () => {
    await refused(db.sql`select public.agent_heartbeat(${tokenA}, 'agent-a', p_health => ${'ninety'}::text::integer)`, '22P02', /integer/);
    await refused(
      db.sql`select public.agent_heartbeat(${tokenA}, 'agent-a', p_health => ${'99.5'}::numeric::integer + 1000)`,
      '22023',
      /health/,
    );
  });

  it('an unknown status', async () => {
    await refused(
      db.sql`select public.agent_heartbeat(${tokenA}, 'agent-a', p_status => 'sleeping')`,
      '22023',
      /status must be one of running, warning, error, got 'sleeping'/,
    );
    await refused(db.sql`select public.agent_heartbeat(${tokenA}, 'agent-a', p_status => 'stale')`, '22023', /status must be one of/);
    await refused(
      db.sql`select public.force_agent_status('agent-a', 'stale')`,
      '22023',
      /status must be one of running, warning, error, stopped/,
    );
    await refused(db.sql`select public.agent_report(${tokenA}, 'agent-a', 'exploded')`, '22023', /event must be one of/);
  });

  it('a 100 kB activity text', async () => {
    const huge = 'x'.repeat(100_000);
    await refused(
      db.sql`select public.agent_heartbeat(${tokenA}, 'agent-a', p_activity => ${huge})`,
      '22023',
      /activity is 100000 characters long; the limit is 1000/,
    );
    await refused(db.sql`select public.agent_report(${tokenA}, 'agent-a', 'error', ${huge})`, '22023', /message is 100000 characters long/);
  });

  // Text Postgres cannot store: NUL in any text argument, NUL or a lone surrogate in any JSON text. The
  // functions and the SDKs refuse or clean them first (tests/functions, tests/sdk); this is the floor.
  it.each([
    ['agent_heartbeat agent_name', (nul: string) => db.sql`select public.agent_heartbeat(${tokenA}, ${`agent-a${nul}`})`],
    ['agent_heartbeat activity', (nul: string) => db.sql`select public.agent_heartbeat(${tokenA}, 'agent-a', p_activity => ${nul})`],
    ['agent_report message', (nul: string) => db.sql`select public.agent_report(${tokenA}, 'agent-a', 'warning', ${`slow${nul}`})`],
    ['agent_report activity', (nul: string) => db.sql`select public.agent_report(${tokenA}, 'agent-a', 'activity', p_activity => ${nul})`],
    [
      'agent_report exit_signal',
      (nul: string) => db.sql`select public.agent_report(${tokenA}, 'agent-a', 'stopped', p_exit_signal => ${nul})`,
    ],
    ['force_agent_status reason', (nul: string) => db.sql`select public.force_agent_status('agent-a', 'error', 1, ${nul})`],
    ['create_api_token label', (nul: string) => db.sql`select * from public.create_api_token('agent', ${nul}, 'agent-a')`],
    [
      'enqueue idempotency key',
      (nul: string) => db.sql`select * from public.enqueue_agent_commands('start', 'agent-a', p_idempotency_key => ${nul})`,
    ],
  ])('NUL in %s', async (_field, statement) => {
    await refused(statement('a\u0000b') as Promise<unknown>, '22021', /invalid byte sequence/);
  });

  it.each([
    ['NUL', '\\u0000', '22P05'],
    ['a lone surrogate', '\\ud800', '22P02'],
  ])('%s in JSON: report details, a runner agent list', async (_what, sequence, code) => {
    const runner = await createToken(db.sql, 'runner', { host: 'host-json', newAgents: true });
    await refused(
      db.sql`select public.agent_report(${tokenA}, 'agent-a', 'started', p_details => ${`{"log": "x${sequence}"}`}::text::jsonb)`,
      code,
      /./,
    );
    await refused(db.sql`select public.runner_register(${runner}, ${`[{"name": "x${sequence}"}]`}::text::jsonb)`, code, /./);
    await refused(db.sql`select public.runner_heartbeat(${runner}, ${`[{"name": "x${sequence}"}]`}::text::jsonb)`, code, /./);
  });

  it('a depth bomb in report details or a runner agent list', async () => {
    const bomb = `${'['.repeat(16_000)}${']'.repeat(16_000)}`;
    const runner = await createToken(db.sql, 'runner', { host: 'host-bomb', newAgents: true });
    await refused(
      db.sql`select public.agent_report(${tokenA}, 'agent-a', 'started', p_details => ${`{"d": ${bomb}}`}::text::jsonb)`,
      '54001',
      /stack depth/,
    );
    await refused(
      db.sql`select public.runner_register(${runner}, ${`[{"name": "x", "metadata": ${bomb}}]`}::text::jsonb)`,
      '54001',
      /stack depth/,
    );
  });

  it('an empty or 1,000-character agent name', async () => {
    await refused(db.sql`select public.agent_heartbeat(${tokenA}, '')`, '22023', /agent_name is required/);
    await refused(
      db.sql`select public.agent_heartbeat(${tokenA}, ${'n'.repeat(1000)})`,
      '22023',
      /agent_name is 1000 characters long; the limit is 100/,
    );
    await refused(db.sql`select public.agent_heartbeat(${tokenA}, ' agent-a ')`, '22023', /leading or trailing spaces/);
    await refused(db.sql`select public.create_api_token('agent', p_agent_name => ${'n'.repeat(1000)})`, '22023', /limit is 100/);
  });

  it('SQL metacharacters in names are data, never SQL', async () => {
    const names = [`agent-a'; drop table public.agent_status; --`, `"); delete from public.agent_events; --`, `agent-a%`, `agent_a`, `\\'`];
    for (const name of names) {
      await refused(db.sql`select public.agent_heartbeat(${tokenA}, ${name})`, '28000', /not allowed to speak for agent/);
    }
    // and such a name, when it is someone's real agent name, round-trips exactly
    const odd = `Bob's "agent"; drop table x; --`;
    const token = await createToken(db.sql, 'agent', { agent: odd });
    await db.sql`select public.agent_heartbeat(${token}, ${odd}, p_status => 'running')`;
    const [row] = await db.sql`select agent_name, status from public.agent_status where agent_name = ${odd}`;
    expect(row).toEqual({ agent_name: odd, status: 'running' });
    await db.sql`delete from public.agent_status where agent_name = ${odd}`;
    snapshot = await state();
  });

  it('a missing, unknown or revoked token', async () => {
    await refused(db.sql`select public.agent_heartbeat(null, 'agent-a')`, '28000', /token is missing, unknown, revoked/);
    await refused(db.sql`select public.agent_heartbeat('asa_not-a-real-token', 'agent-a')`, '28000', /token is missing, unknown, revoked/);
    const revoked = await createToken(db.sql, 'agent', { agent: 'agent-a' });
    const [{ id }] =
      await db.sql`select id from public.verify_api_token(${revoked}) v join public.api_tokens t on t.label = v.label order by t.created_at desc limit 1`;
    await db.sql`select * from public.revoke_api_token(${id})`;
    snapshot = await state();
    await refused(db.sql`select public.agent_heartbeat(${revoked}, 'agent-a')`, '28000', /token is missing, unknown, revoked/);
    const [v] = await db.sql`select * from public.verify_api_token(${revoked})`;
    expect(v.valid).toBe(false);
  });

  it("agent A's token speaking for agent B gets the same answer as an unknown agent", async () => {
    const foreign = await failure(db.sql`select public.agent_heartbeat(${tokenA}, 'agent-b')`);
    const unknown = await failure(db.sql`select public.agent_heartbeat(${tokenA}, 'no-such-agent')`);
    expect(foreign!.code).toBe('28000');
    expect(foreign!.message.replace('agent-b', 'X')).toBe(unknown!.message.replace('no-such-agent', 'X'));
    await refused(db.sql`select public.agent_report(${tokenA}, 'agent-b', 'stopped')`, '28000', /not allowed to speak for agent 'agent-b'/);
    // and B's own token still works
    await db.sql`select public.agent_heartbeat(${tokenB}, 'agent-b')`;
    snapshot = await state();
  });

  it('an agent token cannot report runner events or act as a runner', async () => {
    await refused(db.sql`select public.agent_report(${tokenA}, 'agent-a', 'adopted', p_pid => 1)`, '22023', /reported by the runner/);
    await refused(db.sql`select * from public.runner_claim_commands(${tokenA})`, '28000', /runner token/);
    await refused(db.sql`select public.runner_register(${tokenA}, '[]'::jsonb)`, '28000', /runner token/);
  });

  it("a runner claiming another host's commands gets none of them", async () => {
    const hostA = await registerRunner(db.sql, 'host-a', ['agent-a']);
    const hostB = await registerRunner(db.sql, 'host-b', ['agent-b']);
    await db.sql`select * from public.enqueue_agent_commands('start', 'agent-a')`;
    expect(await db.sql`select * from public.runner_claim_commands(${hostB})`).toHaveLength(0);
    const [command] = await db.sql`select * from public.runner_claim_commands(${hostA})`;
    expect(command).toMatchObject({ agent_name: 'agent-a', action: 'start' });
    // nor complete them, nor speak for their agents
    const completing = await failure(db.sql`select public.runner_complete_command(${hostB}, ${command.id}, true)`);
    expect(completing).toMatchObject({ code: '55000' });
    expect((await failure(db.sql`select public.agent_report(${hostB}, 'agent-a', 'crashed', p_exit_code => 1)`))!.code).toBe('28000');
    // a runner cannot take over an agent that another online runner manages, even with a token naming it
    const [{ token: naming }] = await db.sql`select token from public.create_api_token('runner', p_host => 'host-b',
                                                                                  p_agents => array['agent-a', 'agent-b'])`;
    const clash = await failure(db.sql`select public.runner_register(${naming}, ${db.sql.json([{ name: 'agent-a' }])})`);
    expect(clash).toMatchObject({ code: '55000' });
    expect(clash!.message).toMatch(/managed by the runner on host 'host-a'/);
  });

  it('a runner token registering names it was not given: refused, naming the token, the agent and what it allows', async () => {
    const [{ token }] = await db.sql`select token from public.create_api_token('runner', p_host => 'host-scoped',
                                                                            p_agents => array['scraper-*', 'Tweet Agent'])`;
    const planted = Array.from({ length: 500 }, (_, i) => ({ name: `planted-${i}` }));
    for (const agents of [planted, [{ name: 'scraper-1' }, { name: 'planted' }], [{ name: 'scraper_1' }]]) {
      const error = await failure(db.sql`select public.runner_register(${token}, ${db.sql.json(agents)})`);
      expect(error?.code).toBe('42501');
      expect(error?.message).toMatch(
        /^runner token host-scoped may not register agent '(planted|scraper_1)\S*': it may register only scraper-\*, Tweet Agent$/,
      );
    }
    expect(await db.sql`select 1 from public.agent_status where agent_name like 'planted%' or agent_name = 'scraper_1'`).toHaveLength(0);
    expect(await db.sql`select 1 from public.runners where host = 'host-scoped'`).toHaveLength(0);
    // what it was given
    const [ok] =
      await db.sql`select public.runner_register(${token}, ${db.sql.json([{ name: 'scraper-1' }, { name: 'Tweet Agent' }])}) as r`;
    expect(ok.r.agents).toEqual(['scraper-1', 'Tweet Agent']);
    snapshot = await state();
    const [listed] = await db.sql`select agents from public.list_api_tokens() where host = 'host-scoped'`;
    expect(listed.agents).toEqual(['scraper-*', 'Tweet Agent']);
    expect(
      await failure(db.sql`select * from public.create_api_token('agent', p_agent_name => 'agent-a', p_agents => array['x'])`),
    ).toMatchObject({
      code: '22023',
    });
  });

  it('bad runner agent lists and settings', async () => {
    const token = await createToken(db.sql, 'runner', { host: 'host-c', newAgents: true });
    for (const [agents, message] of [
      [{ name: 'x' }, /agents must be a JSON array/],
      [[{ nom: 'x' }], /"name" string/],
      [[{ name: 'x' }, { name: 'x' }], /listed twice/],
      [[{ name: 'x', heartbeat_timeout_s: 1 }], /bad agent settings/],
    ] as const) {
      const error = await failure(db.sql`select public.runner_register(${token}, ${db.sql.json(agents as never)})`);
      expect(error?.message).toMatch(message);
    }
    expect(await db.sql`select 1 from public.runners where host = 'host-c'`).toHaveLength(0);
    expect(await db.sql`select 1 from public.agent_status where agent_name = 'x'`).toHaveLength(0);
  });

  it('commands for unknown agents, unmanaged agents, or with bad actions', async () => {
    const before = await db.sql`select count(*)::int as n from public.agent_commands`;
    expect(await failure(db.sql`select * from public.enqueue_agent_commands('explode', 'agent-a')`)).toMatchObject({ code: '22023' });
    expect(await failure(db.sql`select * from public.enqueue_agent_commands('start', 'ghost')`)).toMatchObject({ code: 'P0002' });
    await setAgentState(db.sql, 'loner', 'stopped');
    const unmanaged = await failure(db.sql`select * from public.enqueue_agent_commands('start', 'loner')`);
    expect(unmanaged).toMatchObject({ code: '55000' });
    expect(unmanaged!.message).toMatch(/no runner manages agent 'loner'/);
    const after = await db.sql`select count(*)::int as n from public.agent_commands`;
    expect(after[0].n).toBe(before[0].n);
  });
});
