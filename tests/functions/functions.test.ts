// The edge functions served by the real Deno on this file's own database, through the local stack's
// gateway: every endpoint's success path, bad input refused with {error: {code, message}} and nothing
// written, the same answer for every wrong token, CORS, body limits.
import { randomUUID } from 'node:crypto';
import { describe, it, expect, beforeAll } from 'vitest';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { request as httpRequest } from 'node:http';
import { postgrestRpc, useTestStack } from '../helpers/stack.ts';
import { createToken, registerRunner, setAgentState } from '../helpers/agents.ts';
import { type AgentState, CommandResponse, ErrorBody, HeartbeatResponse, ReportResponse } from '../../shared/api/index.ts';

const stack = useTestStack({ functions: true });

async function post(name: string, body: unknown, token?: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${stack.url}/functions/v1/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text ? JSON.parse(text) : undefined };
}

// Everything a refused request could have touched.
async function snapshot() {
  const [row] = await stack.db.sql`
    select (select json_agg(a order by id)::text from public.agent_status a) as agents,
           (select count(*) from public.agent_events) as events,
           (select count(*) from public.agent_commands) as commands`;
  return JSON.stringify(row);
}

let tokenA: string;
let tokenB: string;
let runnerToken: string;
let operatorToken: string;

beforeAll(async () => {
  const sql = stack.db.sql;
  tokenA = await createToken(sql, 'agent', { agent: 'agent-a' });
  tokenB = await createToken(sql, 'agent', { agent: 'agent-b' });
  runnerToken = await registerRunner(sql, 'host-1', ['managed-1', 'managed-2']);
  operatorToken = await createToken(sql, 'operator', { email: stack.operator.email });
});

describe('heartbeat', () => {
  it('records proof of life with status, health and activity in one request', async () => {
    const answer = await post(
      'heartbeat',
      { agent_name: 'agent-a', status: 'running', health: 87, last_activity: 'Fetching tweets', pid: 4242 },
      tokenA,
    );
    expect(answer.status).toBe(200);
    const { agent } = HeartbeatResponse.parse(answer.json);
    expect(agent).toMatchObject({ agent_name: 'agent-a', status: 'running', health: 87, last_activity: 'Fetching tweets' });
    const [row] = await stack.db
      .sql`select status, health, last_activity, pid, last_heartbeat from public.agent_status where agent_name = 'agent-a'`;
    expect(row).toMatchObject({ status: 'running', health: 87, last_activity: 'Fetching tweets', pid: 4242 });
    expect(new Date(agent.last_heartbeat!).getTime()).toBe(row.last_heartbeat.getTime());
  });

  it('keeps quotes, backslashes and dollar quotes in a heartbeat exactly (the batch travels as a dollar-quoted literal)', async () => {
    const activity = `$$ $hb$ $hb0$ ' " \\ \\n $q$); select 1; -- done`;
    const answer = await post('heartbeat', { agent_name: 'agent-a', last_activity: activity }, tokenA);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.agent.last_activity).toBe(activity);
    const [row] = await stack.db.sql`select last_activity from public.agent_status where agent_name = 'agent-a'`;
    expect(row.last_activity).toBe(activity);
  });

  it('needs nothing but the agent name', async () => {
    const answer = await post('heartbeat', { agent_name: 'agent-b' }, tokenB);
    expect(answer.status).toBe(200);
    expect(HeartbeatResponse.parse(answer.json).agent.status).toBe('running');
  });

  it('applies 40 concurrent heartbeats of 20 agents, each answered with its own agent', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `crowd-${i}`);
    const tokens = await Promise.all(names.map((agent) => createToken(stack.db.sql, 'agent', { agent })));
    const answers = await Promise.all(
      [...names, ...names].map((name, i) => post('heartbeat', { agent_name: name, health: i % 100 }, tokens[i % 20])),
    );
    answers.forEach((answer, i) => {
      expect(answer.status).toBe(200);
      expect(answer.json.agent.agent_name).toBe(names[i % 20]);
    });
    const [{ running }] = await stack.db
      .sql`select count(*)::int as running from public.agent_status where agent_name like 'crowd-%' and status = 'running'`;
    expect(running).toBe(20);
  });

  it('answers each of concurrent heartbeats on its own: the refused ones fail alone and write nothing', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `mixed-${i}`);
    const tokens = await Promise.all(names.map((agent) => createToken(stack.db.sql, 'agent', { agent })));
    // every third one carries a token of another agent
    const answers = await Promise.all(
      names.map((name, i) => post('heartbeat', { agent_name: name, health: 50 }, tokens[i % 3 === 0 ? (i + 1) % 12 : i])),
    );
    const rows = await stack.db.sql`select agent_name, status, health from public.agent_status where agent_name like 'mixed-%'`;
    const byName = new Map(rows.map((r) => [r.agent_name, r]));
    answers.forEach((answer, i) => {
      if (i % 3 === 0) {
        expect(answer.status).toBe(401);
        expect(byName.get(names[i])).toMatchObject({ status: 'stopped', health: 0 });
      } else {
        expect(answer.status).toBe(200);
        expect(byName.get(names[i])).toMatchObject({ status: 'running', health: 50 });
      }
    });
  });

  it('lets a runner token speak for the agents its host manages', async () => {
    const answer = await post('heartbeat', { agent_name: 'managed-1' }, runnerToken);
    expect(answer.status).toBe(200);
    expect(answer.json.agent.status).toBe('running');
  });
});

describe('text and JSON that could poison a batch', () => {
  // An attacker (or a buggy agent) holding its own agent token sends text Postgres cannot store, while
  // other agents heartbeat at the same moment through the same batched statement.
  it('refuses a NUL or lone surrogate in one heartbeat with a 400 naming the field; concurrent heartbeats all apply', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `poison-${i}`);
    const tokens = await Promise.all(names.map((agent) => createToken(stack.db.sql, 'agent', { agent })));
    const bad = ['running\u0000', 'half \ud800 pair', 'tail \udc00'];
    const answers = await Promise.all(
      names.map((name, i) => post('heartbeat', { agent_name: name, health: 60, ...(i < 3 ? { last_activity: bad[i] } : {}) }, tokens[i])),
    );
    const rows = await stack.db.sql`select agent_name, status, health from public.agent_status where agent_name like 'poison-%'`;
    const byName = new Map(rows.map((r) => [r.agent_name, r]));
    answers.forEach((answer, i) => {
      if (i < 3) {
        expect(answer.status, answer.text).toBe(400);
        expect(ErrorBody.parse(answer.json).error.message).toMatch(/^last_activity contains a (NUL character|lone UTF-16 surrogate)/);
        expect(byName.get(names[i])).toMatchObject({ status: 'stopped', health: 0 });
      } else {
        expect(answer.status, answer.text).toBe(200);
        expect(byName.get(names[i])).toMatchObject({ status: 'running', health: 60 });
      }
    });
  });

  it('refuses NUL in a report message, details text or key, naming the field, and writes nothing', async () => {
    const before = await snapshot();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ event: 'warning', message: 'disk\u0000full' }, /message contains a NUL character/],
      [{ event: 'error', message: 'bad \udfff' }, /message contains a lone UTF-16 surrogate/],
      [{ event: 'started', details: { log: ['ok', 'x\u0000'] } }, /details has a text that contains a NUL character/],
      [{ event: 'started', details: { 'k\u0000': 1 } }, /details has a key that contains a NUL character/],
    ];
    for (const [report, message] of cases) {
      const answer = await post('report', { agent_name: 'agent-a', ...report }, tokenA);
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json.error).toMatchObject({ code: 'invalid_request', message: expect.stringMatching(message) });
    }
    expect(await snapshot()).toBe(before);
  });

  it('answers a details depth bomb or key bomb with a 400 naming the limit, not a 503', async () => {
    const before = await snapshot();
    const deep = `{"agent_name":"agent-a","event":"started","details":{"d":${'['.repeat(16_000)}${']'.repeat(16_000)}}}`;
    expect(deep.length).toBeLessThan(64 * 1024);
    const depth = await post('report', deep, tokenA);
    expect(depth.status, depth.text).toBe(400);
    expect(depth.json.error.message).toMatch(/details nests deeper than 8 levels, the limit/);
    const keys = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`k${i}`, i]));
    const wide = await post('report', { agent_name: 'agent-a', event: 'started', details: keys }, tokenA);
    expect(wide.status, wide.text).toBe(400);
    expect(wide.json.error.message).toMatch(/details has more than 500 keys and array items, the limit/);
    expect(await snapshot()).toBe(before);
  });
});

describe('database calls that hang', () => {
  it('a command waiting on a locked agent answers 503 and queues nothing, then or later', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = stack.db.sql.begin(async (tx) => {
      await tx`select 1 from public.agent_status where agent_name = 'managed-2' for update`;
      locked();
      await held;
    });
    await isLocked;
    const before = await snapshot();
    const answer = await post('command', { action: 'restart', agent_name: 'managed-2' }, operatorToken);
    release();
    await holder;
    expect(answer.status, answer.text).toBe(503);
    expect(answer.json.error.message).toMatch(/gave up waiting; nothing was changed/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await snapshot()).toBe(before);
  });

  it('answer 503 after the timeout instead of holding the request, and the report is not applied later', async () => {
    // another transaction holds agent-a's row, as a long sweep or a stuck session would
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = stack.db.sql.begin(async (tx) => {
      await tx`select 1 from public.agent_status where agent_name = 'agent-a' for update`;
      locked();
      await held;
    });
    await isLocked;
    const before = await snapshot();
    const answer = await post('report', { agent_name: 'agent-a', event: 'warning', message: 'slow' }, tokenA);
    release();
    await holder;
    expect(answer.status, answer.text).toBe(503);
    expect(answer.json.error.message).toMatch(/did not answer the reports within 5 s/);
    expect(await snapshot()).toBe(before);
  });

  it('a heartbeat waiting on a locked agent answers 503 and is not applied later (the server gives up first)', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = stack.db.sql.begin(async (tx) => {
      await tx`select 1 from public.agent_status where agent_name = 'agent-a' for update`;
      locked();
      await held;
    });
    await isLocked;
    const before = await snapshot();
    const answer = await post('heartbeat', { agent_name: 'agent-a', health: 12, last_activity: 'behind a locked row' }, tokenA);
    // the row comes free after the 503: a batch the server had not rolled back would commit now
    release();
    await holder;
    expect(answer.status, answer.text).toBe(503);
    expect(answer.json.error.message).toMatch(/gave up waiting; nothing was changed/);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await snapshot()).toBe(before);
  });
});

describe('PostgREST answers of the SQL API', () => {
  // what the CLI, the dashboard and the runner get: the HTTP status means what happened, the body keeps
  // the SQLSTATE, message and hint they branch on and show
  const rpc = (fn: string, args: Record<string, unknown>) => postgrestRpc(stack, fn, args);

  it('not found is 404 and a conflict 409, with the message and hint kept', async () => {
    const ghost = await rpc('force_agent_status', { p_agent_name: 'ghost', p_status: 'stopped', p_operator_token: operatorToken });
    expect(ghost).toEqual({
      status: 404,
      body: { code: 'P0002', message: "no agent named 'ghost'", details: null, hint: 'List agents with: agent-status list' },
    });
    expect((await rpc('revoke_api_token', { p_token_id_or_prefix: 'aso_nothing', p_operator_token: operatorToken })).status).toBe(404);
    const unmanaged = await rpc('enqueue_agent_commands', { p_action: 'start', p_agent_name: 'agent-a', p_operator_token: operatorToken });
    expect(unmanaged.status).toBe(409);
    expect(unmanaged.body).toMatchObject({ code: '55000', message: "no runner manages agent 'agent-a', so nothing can start it" });
    const late = await rpc('runner_complete_command', { p_token: runnerToken, p_command_id: 999_999, p_succeeded: true });
    expect(late).toMatchObject({ status: 409, body: { code: '55000' } });
  });
});

describe('report', () => {
  it('started, warning, activity, error and stopped, each visible in the database', async () => {
    const name = 'agent-a';
    const steps: [Record<string, unknown>, Partial<AgentState>][] = [
      [
        { event: 'started', pid: 100 },
        { status: 'running', started_at: expect.any(String) },
      ],
      [
        { event: 'warning', message: 'rate limited', health: 60 },
        { status: 'warning', health: 60, status_reason: 'rate limited' },
      ],
      [
        { event: 'running', health: 95 },
        { status: 'running', health: 95 },
      ],
      [
        { event: 'activity', last_activity: 'Parsing page 3' },
        { status: 'running', last_activity: 'Parsing page 3' },
      ],
      [
        { event: 'error', message: 'database connection lost' },
        { status: 'error', last_error: 'database connection lost' },
      ],
      [{ event: 'started' }, { status: 'running' }],
      [{ event: 'stopped' }, { status: 'stopped', health: 0, stale_at: null }],
    ];
    for (const [report, expected] of steps) {
      const answer = await post('report', { agent_name: name, ...report }, tokenA);
      expect(answer.status, answer.text).toBe(200);
      const parsed = ReportResponse.parse(answer.json);
      expect('agent' in parsed && parsed.agent).toMatchObject(expected);
      const [row] = await stack.db.sql`select status, health from public.agent_status where agent_name = ${name}`;
      expect(row.status).toBe(expected.status);
    }
  });

  it('applies a batch in order and answers the state after each report', async () => {
    const answer = await post(
      'report',
      {
        reports: [
          { agent_name: 'agent-b', event: 'started' },
          { agent_name: 'agent-b', event: 'warning', message: 'disk 91% full', health: 70 },
          { agent_name: 'agent-b', event: 'stopped' },
        ],
      },
      tokenB,
    );
    expect(answer.status, answer.text).toBe(200);
    const parsed = ReportResponse.parse(answer.json);
    expect('agents' in parsed && parsed.agents.map((a) => a.status)).toEqual(['running', 'warning', 'stopped']);
    const events = await stack.db.sql`
      select kind from public.agent_events e join public.agent_status a on a.id = e.agent_id
      where a.agent_name = 'agent-b' and kind in ('started', 'warning', 'stopped') order by e.id`;
    expect(events.map((e) => e.kind)).toEqual(['started', 'warning', 'stopped']);
  });

  it('writes nothing of a batch when one report in it is refused', async () => {
    const before = await snapshot();
    const answer = await post(
      'report',
      {
        reports: [
          { agent_name: 'agent-a', event: 'started' },
          { agent_name: 'agent-b', event: 'started' },
        ],
      },
      tokenA,
    );
    expect(answer.status).toBe(401);
    expect(await snapshot()).toBe(before);
  });

  it('applies a report sent again with the same report_id once: a runner retrying a crash counts one restart', async () => {
    const crash = { agent_name: 'managed-2', event: 'crashed', exit_code: 9, message: 'killed', report_id: randomUUID() };
    const start = { agent_name: 'managed-2', event: 'started', pid: 4242, report_id: randomUUID() };
    const count = async () => {
      const [row] = await stack.db.sql`
        select a.restarts_total, (select count(*)::int from public.agent_events e where e.agent_id = a.id) as events
        from public.agent_status a where a.agent_name = 'managed-2'`;
      return row;
    };
    expect((await post('report', crash, runnerToken)).status).toBe(200);
    const started = await post('report', start, runnerToken);
    expect(started.status).toBe(200);
    const once = await count();
    for (const retry of [crash, start, crash]) {
      const answer = await post('report', retry, runnerToken);
      expect(answer.status, answer.text).toBe(200);
      expect(answer.json.agent).toEqual(started.json.agent);
    }
    expect(await post('report', { reports: [crash, start] }, runnerToken)).toMatchObject({ status: 200 });
    expect(await count()).toEqual(once);
    // the same id from another agent is another report
    expect((await post('report', { agent_name: 'agent-a', event: 'started', report_id: crash.report_id }, tokenA)).status).toBe(200);
    expect(await count()).toEqual(once);
  });

  it('lets a runner report a crash of an agent it supervises', async () => {
    const answer = await post(
      'report',
      { agent_name: 'managed-2', event: 'crashed', exit_code: 3, message: 'exited with code 3' },
      runnerToken,
    );
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.agent).toMatchObject({ status: 'error', last_error: 'exited with code 3' });
  });
});

describe('command', () => {
  beforeAll(async () => {
    await setAgentState(stack.db.sql, 'managed-1', 'running');
  });

  it('an operator token enqueues a command for one agent and gets its id', async () => {
    const answer = await post('command', { action: 'restart', agent_name: 'managed-1' }, operatorToken);
    expect(answer.status, answer.text).toBe(202);
    const { command_ids, commands } = CommandResponse.parse(answer.json);
    expect(commands).toMatchObject([{ agent_name: 'managed-1', action: 'restart', status: 'pending' }]);
    const rows = await stack.db.sql`select id, action, status, requested_by from public.agent_commands where id = any(${command_ids})`;
    expect(rows).toMatchObject([{ action: 'restart', status: 'pending', requested_by: `operator ${stack.operator.email}` }]);
  });

  it('a signed-in operator enqueues for a host and for all agents', async () => {
    const client = createClient(stack.url, stack.anonKey, { realtime: { transport: WebSocket as never }, auth: { persistSession: false } });
    const { data, error } = await client.auth.signInWithPassword(stack.operator);
    expect(error).toBeNull();
    const jwt = data.session!.access_token;
    const host = await post('command', { action: 'stop', host: 'host-1' }, jwt);
    expect(host.status, host.text).toBe(202);
    expect(CommandResponse.parse(host.json).commands.map((c) => c.agent_name)).toEqual(['managed-1', 'managed-2']);
    const all = await post('command', { action: 'start', all: true }, jwt);
    expect(all.status, all.text).toBe(202);
    expect(all.json.command_ids).toHaveLength(2);
  });

  it('refuses a signed-in user who is not an operator, and agent tokens', async () => {
    await stack.createUser('visitor@agent-status.test', 'visitor-password-1');
    const client = createClient(stack.url, stack.anonKey, { realtime: { transport: WebSocket as never }, auth: { persistSession: false } });
    const { data } = await client.auth.signInWithPassword({ email: 'visitor@agent-status.test', password: 'visitor-password-1' });
    const before = await snapshot();
    const visitor = await post('command', { action: 'stop', agent_name: 'managed-1' }, data.session!.access_token);
    expect(visitor.status).toBe(403);
    expect(ErrorBody.parse(visitor.json).error.code).toBe('forbidden');
    const agent = await post('command', { action: 'stop', agent_name: 'managed-1' }, tokenA);
    expect(agent.status).toBe(401);
    const nobody = await post('command', { action: 'stop', agent_name: 'managed-1' });
    expect(nobody.status).toBe(401);
    const forged = await post(
      'command',
      { action: 'stop', agent_name: 'managed-1' },
      'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.forged',
    );
    expect(forged.status).toBe(401);
    expect(await snapshot()).toBe(before);
  });

  it('a retried request with the same Idempotency-Key queues nothing new and answers the same commands', async () => {
    const body = { action: 'restart', agent_name: 'managed-1' };
    const first = await post('command', body, operatorToken, { 'idempotency-key': 'retry-after-timeout-1' });
    expect(first.status, first.text).toBe(202);
    const before = await snapshot();
    const retried = await post('command', body, operatorToken, { 'idempotency-key': 'retry-after-timeout-1' });
    expect(retried.status, retried.text).toBe(202);
    expect(retried.json.command_ids).toEqual(first.json.command_ids);
    expect(await snapshot()).toBe(before);
    const bad = await post('command', body, operatorToken, { 'idempotency-key': 'x'.repeat(201) });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/Idempotency-Key/);
  });

  it('the same Idempotency-Key with another request is refused with 422, and queues nothing', async () => {
    const first = await post('command', { action: 'restart', agent_name: 'managed-1' }, operatorToken, { 'idempotency-key': 'reused-1' });
    expect(first.status, first.text).toBe(202);
    const before = await snapshot();
    for (const other of [
      { action: 'stop', agent_name: 'managed-1' },
      { action: 'restart', all: true },
    ]) {
      const reused = await post('command', other, operatorToken, { 'idempotency-key': 'reused-1' });
      expect(reused.status, reused.text).toBe(422);
      expect(reused.json.error).toMatchObject({
        code: 'unprocessable',
        message: expect.stringContaining("idempotency key 'reused-1' was used for restart agent 'managed-1'"),
        hint: expect.stringMatching(/new key/),
      });
    }
    expect(await snapshot()).toBe(before);
  });

  it('says what is wrong with a command', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ action: 'explode', agent_name: 'managed-1' }, 400, /action/],
      [{ action: 'start' }, 400, /exactly one target/],
      [{ action: 'start', agent_name: 'managed-1', all: true }, 400, /exactly one target/],
      [{ action: 'start', agent_name: 'no-such-agent' }, 404, /no agent named 'no-such-agent'/],
      [{ action: 'start', agent_name: 'agent-a' }, 409, /no runner manages agent 'agent-a'/],
    ];
    for (const [body, status, message] of cases) {
      const before = await snapshot();
      const answer = await post('command', body, operatorToken);
      expect(answer.status, answer.text).toBe(status);
      expect(ErrorBody.parse(answer.json).error.message).toMatch(message);
      expect(await snapshot()).toBe(before);
    }
  });
});

describe('bad input', () => {
  const cases: [string, string, unknown, number, string, RegExp][] = [
    ['health 101', 'heartbeat', { agent_name: 'agent-a', health: 101 }, 400, 'invalid_request', /health must be between 0 and 100/],
    [
      'health -1',
      'report',
      { agent_name: 'agent-a', event: 'warning', message: 'x', health: -1 },
      400,
      'invalid_request',
      /health must be between 0 and 100/,
    ],
    ['health not a number', 'heartbeat', { agent_name: 'agent-a', health: 'ninety' }, 400, 'invalid_request', /health/],
    ['health 99.5', 'heartbeat', { agent_name: 'agent-a', health: 99.5 }, 400, 'invalid_request', /whole number/],
    ['an unknown status', 'heartbeat', { agent_name: 'agent-a', status: 'sleeping' }, 400, 'invalid_request', /status/],
    ['status stale', 'heartbeat', { agent_name: 'agent-a', status: 'stale' }, 400, 'invalid_request', /status/],
    ['an unknown event', 'report', { agent_name: 'agent-a', event: 'exploded' }, 400, 'invalid_request', /event/],
    [
      'a 5 kB activity',
      'heartbeat',
      { agent_name: 'agent-a', last_activity: 'x'.repeat(5000) },
      400,
      'invalid_request',
      /last_activity is longer than 1000/,
    ],
    ['a warning without a message', 'report', { agent_name: 'agent-a', event: 'warning' }, 400, 'invalid_request', /needs a message/],
    ['an empty agent name', 'heartbeat', { agent_name: '' }, 400, 'invalid_request', /agent_name is required/],
    ['no agent name', 'heartbeat', {}, 400, 'invalid_request', /agent_name is required/],
    ['a 1,000-character agent name', 'heartbeat', { agent_name: 'n'.repeat(1000) }, 400, 'invalid_request', /longer than 100/],
    ['a name with surrounding spaces', 'heartbeat', { agent_name: ' agent-a ' }, 400, 'invalid_request', /leading or trailing spaces/],
    ['a misspelt field', 'heartbeat', { agent_name: 'agent-a', lastActivity: 'x' }, 400, 'invalid_request', /unknown field lastActivity/],
    ['a body that is not JSON', 'heartbeat', '{"agent_name": ', 400, 'invalid_json', /not valid JSON/],
    ['an empty body', 'report', '', 400, 'invalid_json', /empty/],
    ['a JSON array', 'heartbeat', '[1,2]', 400, 'invalid_request', /expected object/],
    [
      'a 100 kB body',
      'report',
      { agent_name: 'agent-a', event: 'error', message: 'x'.repeat(100_000) },
      413,
      'payload_too_large',
      /larger than 65536 bytes/,
    ],
    [
      'a 10 kB heartbeat',
      'heartbeat',
      { agent_name: 'agent-a', last_activity: 'é'.repeat(5000) },
      413,
      'payload_too_large',
      /larger than 8192 bytes/,
    ],
    ['an empty batch', 'report', { reports: [] }, 400, 'invalid_request', /reports is empty/],
  ];

  it.each(cases)('%s', async (_, name, body, status, code, message) => {
    const before = await snapshot();
    const answer = await post(name, body, tokenA);
    expect(answer.status).toBe(status);
    const { error } = ErrorBody.parse(answer.json);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
    expect(answer.text).not.toMatch(/\bat .*\.ts:\d+|node_modules|file:\/\//);
    expect(await snapshot()).toBe(before);
  });

  it('refuses a body over the limit before reading it (Content-Length alone)', async () => {
    // node:http on its own connection: the server answers before reading the body and closes it.
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(
        `${stack.url}/functions/v1/heartbeat`,
        {
          method: 'POST',
          agent: false,
          headers: { authorization: `Bearer ${tokenA}`, 'content-type': 'application/json', 'content-length': 1_000_000 },
        },
        (response) => {
          response.resume();
          request.destroy();
          resolve(response.statusCode!);
        },
      );
      request.on('error', reject);
      request.write('{"agent_name": "agent-a", "last_activity": "');
    });
    expect(status).toBe(413);
  });

  it("answers an unknown, a revoked and another agent's token alike, and writes nothing", async () => {
    const revoked = await createToken(stack.db.sql, 'agent', { agent: 'agent-a' });
    await stack.db.sql`select public.revoke_api_token(${revoked.slice(0, 10)})`.catch(async () => {
      const [{ id }] = await stack.db.sql`select id from public.api_tokens where token_hash = sha256(convert_to(${revoked}, 'UTF8'))`;
      await stack.db.sql`select public.revoke_api_token(${id}::text)`;
    });
    const before = await snapshot();
    const answers = [];
    for (const [endpoint, body] of [
      ['heartbeat', { agent_name: 'agent-a' }],
      ['report', { agent_name: 'agent-a', event: 'started' }],
    ] as const) {
      for (const token of [undefined, 'asa_unknown', revoked, tokenB, runnerToken]) {
        const answer = await post(endpoint, body, token);
        expect(answer.status).toBe(401);
        answers.push(answer.json);
      }
    }
    expect(new Set(answers.slice(0, 5).map((a) => JSON.stringify(a))).size).toBe(1);
    expect(new Set(answers.slice(5).map((a) => JSON.stringify(a))).size).toBe(1);
    expect(ErrorBody.parse(answers[0]).error).toMatchObject({
      code: 'unauthorized',
      message: expect.stringMatching(/not allowed to speak for agent 'agent-a'/),
    });
    expect(await snapshot()).toBe(before);
  });

  it('answers 405 to other methods and 404 to other paths', async () => {
    const get = await fetch(`${stack.url}/functions/v1/heartbeat`);
    expect(get.status).toBe(405);
    expect(ErrorBody.parse(await get.json()).error.code).toBe('method_not_allowed');
    const other = await post('report/elsewhere', {}, tokenA);
    expect(other.status).toBe(404);
    expect(ErrorBody.parse(other.json).error.code).toBe('not_found');
  });
});

describe('CORS', () => {
  it.each(['heartbeat', 'report', 'command'])('answers the preflight of %s and marks answers readable by any origin', async (name) => {
    const preflight = await fetch(`${stack.url}/functions/v1/${name}`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://dashboard.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, apikey, x-client-info',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toMatch(/authorization.*content-type/);
    const refused = await post(name, {}, undefined, { origin: 'https://dashboard.example' });
    expect(refused.headers.get('access-control-allow-origin')).toBe('*');
  });
});
