// The dispatcher for real: the dispatch edge function under Deno, this file's own Postgres, and small
// HTTP servers on 127.0.0.1 standing in for every channel's endpoint. Each test reads what the
// receivers got and what the outbox recorded.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, describe, expect, it, beforeAll } from 'vitest';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { startFunction } from '../../runner/local-stack/functions.ts';
import { useTestStack } from '../helpers/stack.ts';
import { registerRunner, setAgentState } from '../helpers/agents.ts';
import { useReceiver } from './receiver.ts';
import { signedText, WEBHOOK_HEADERS } from '../../shared/alerts.ts';

const stack = useTestStack({ functions: true });
const receiver = useReceiver();

const DISPATCH_KEY = 'dispatch-key-for-this-test-0123456789';

async function dispatch(key = DISPATCH_KEY, url = `${stack.url}/functions/v1/dispatch`) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: '{}',
  });
  return { status: response.status, json: await response.json() };
}

async function channel(
  name: string,
  kind: string,
  path: string | null,
  secret: string | null,
  settings: Record<string, string | number> = {},
) {
  const endpoint = path === null ? null : `${receiver.url}${path}`;
  await stack.db.sql`select public.alert_channel_save(${name}, ${kind}, ${endpoint}, ${secret}, ${stack.db.sql.json(settings)})`;
  // each channel here listens to its own agents only, so tests do not see each other's flips
  await stack.db.sql`select public.alert_channel_rules(${name}, ${stack.db.sql.json({ agents: [`${name}-*`], flap_threshold: 0 })})`;
}

async function flip(agent: string, event: 'error' | 'running', message: string | null = null) {
  await stack.db.sql`
    select agent_private.apply_event(id, ${event}, 'agent', 'test', p_message => ${message})
    from public.agent_status where agent_name = ${agent}`;
}

async function downAgent(agent: string, message = 'it broke') {
  await setAgentState(stack.db.sql, agent, 'running');
  await flip(agent, 'error', message);
}

async function deliveriesOf(channelName: string) {
  return stack.db.sql`
    select d.* from public.alert_deliveries d join public.alert_channels c on c.id = d.channel_id
    where c.name = ${channelName} order by d.id`;
}

/** Makes every pending delivery due now, instead of waiting out its backoff. */
async function makeDue() {
  await stack.db.sql`update public.alert_deliveries set due_at = now() where status = 'pending'`;
}

let stopSecond: (() => Promise<void>) | undefined;
afterAll(() => stopSecond?.());

beforeAll(async () => {
  await stack.db.sql`update public.alert_settings set backoff_base_s = 1, backoff_max_s = 1`;
  await stack.db.sql`select public.alert_configure_dispatch(${`${stack.url}/functions/v1/dispatch`}, ${DISPATCH_KEY})`;
});

describe('the dispatch function', () => {
  it('refuses callers without the dispatch key, the service key included', async () => {
    for (const key of [stack.anonKey, stack.serviceKey, `${DISPATCH_KEY}x`]) {
      const answer = await dispatch(key);
      expect(answer.status).toBe(401);
      expect(answer.json.error.code).toBe('unauthorized');
    }
  });

  it('sends one notification per flip per channel with two dispatchers running at once', async () => {
    // a second dispatcher: its own Deno process, its own connections, beside the stack's
    const supervisor = new Supervisor((name, reason) => console.error(`${name} ${reason}`));
    stopSecond = () => supervisor.stopAll();
    const second = await startFunction('dispatch', {
      supervisor,
      env: { SUPABASE_URL: stack.url, SUPABASE_ANON_KEY: stack.anonKey, SUPABASE_DB_URL: stack.db.url },
    });
    const secondUrl = `http://127.0.0.1:${second.port}/dispatch`;
    await channel('twin-a', 'webhook', '/twin-a', 'secret-a-0123456789');
    await channel('twin-b', 'webhook', '/twin-b', 'secret-b-0123456789');
    const agents = Array.from({ length: 15 }, (_, i) => i);
    for (const i of agents) {
      await downAgent(`twin-a-${i}`);
      await downAgent(`twin-b-${i}`);
    }
    const results = await Promise.all([dispatch(), dispatch(DISPATCH_KEY, secondUrl), dispatch(), dispatch(DISPATCH_KEY, secondUrl)]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(results.reduce((sum, r) => sum + r.json.delivered, 0)).toBe(30);
    for (const name of ['twin-a', 'twin-b']) {
      const ids = receiver.on(`/${name}`).map((r) => r.headers[WEBHOOK_HEADERS.delivery]);
      expect(ids).toHaveLength(15);
      expect(new Set(ids).size).toBe(15);
      expect((await deliveriesOf(name)).every((d) => d.status === 'delivered' && d.attempts === 1)).toBe(true);
    }
  });

  it('signs the webhook body so a receiver can verify it with the documented algorithm', async () => {
    const [request] = receiver.on('/twin-a');
    const timestamp = request.headers[WEBHOOK_HEADERS.timestamp] as string;
    const signature = (request.headers[WEBHOOK_HEADERS.signature] as string).replace(/^v1=/, '');
    const expected = createHmac('sha256', 'secret-a-0123456789').update(signedText(timestamp, request.body)).digest('hex');
    expect(timingSafeEqual(Buffer.from(signature, 'hex'), Buffer.from(expected, 'hex'))).toBe(true);
    expect(Math.abs(Date.now() / 1000 - Number(timestamp))).toBeLessThan(300);
    const wrongKey = createHmac('sha256', 'secret-b-0123456789').update(signedText(timestamp, request.body)).digest('hex');
    expect(wrongKey).not.toBe(signature);
    expect(request.json).toMatchObject({ kind: 'down', severity: 'critical', status: 'error', channel: 'twin-a' });
  });

  it('tells the recovery after the down notice, in that order', async () => {
    await flip('twin-a-0', 'running');
    await dispatch();
    const last = receiver.on('/twin-a').at(-1)!;
    expect(last.json).toMatchObject({ kind: 'up', agent: 'twin-a-0', title: 'twin-a-0 recovered: running' });
    const first = receiver.on('/twin-a').find((r) => r.json.agent === 'twin-a-0')!;
    expect(last.json.incident).toBe(first.json.incident);
  });

  it('retries a receiver that answers 500, and delivers once when it answers 200', async () => {
    receiver.answer('/flaky', { status: 500, body: 'database is restarting' }, { status: 200, body: 'ok' });
    await channel('flaky', 'webhook', '/flaky', null);
    await downAgent('flaky-1');
    expect((await dispatch()).json).toMatchObject({ delivered: 0, failed: 1 });
    const [pending] = await deliveriesOf('flaky');
    expect(pending).toMatchObject({ status: 'pending', attempts: 1, last_http_status: 500 });
    expect(pending.last_error).toMatch(/HTTP 500.*database is restarting/);
    await makeDue();
    expect((await dispatch()).json).toMatchObject({ delivered: 1 });
    const [delivered] = await deliveriesOf('flaky');
    expect(delivered).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(receiver.on('/flaky')).toHaveLength(2);
    const attempts = await stack.db
      .sql`select ok, http_status, response from public.alert_attempts where delivery_id = ${delivered.id} order by id`;
    expect(attempts).toEqual([
      { ok: false, http_status: 500, response: 'database is restarting' },
      { ok: true, http_status: 200, response: 'ok' },
    ]);
  });

  it('gives up on a receiver that never answers once the retry window is over, and says so', async () => {
    receiver.answer('/silent', 'hang');
    await channel('silent', 'webhook', '/silent', null, { timeout_ms: 1000 });
    await downAgent('silent-1');
    expect((await dispatch()).json).toMatchObject({ failed: 1 });
    let [row] = await deliveriesOf('silent');
    expect(row).toMatchObject({ status: 'pending', attempts: 1, last_error: 'no answer within 1000 ms' });
    // the hour-long retry window, passed
    await stack.db.sql`update public.alert_deliveries set created_at = now() - interval '2 hours' where id = ${row.id}`;
    await makeDue();
    await dispatch();
    [row] = await deliveriesOf('silent');
    expect(row).toMatchObject({ status: 'dead', attempts: 2 });
    const [log] = await stack.db.sql`select status from public.operator_alert_deliveries('silent')`;
    expect(log.status).toBe('dead');
  });

  it('a delivery claimed by a dispatcher that died is sent once its lease is over, not lost', async () => {
    await channel('orphan', 'webhook', '/orphan', null);
    await downAgent('orphan-1');
    // a dispatcher claims it and dies before sending
    const [claimed] = await stack.db.sql`select id, attempt from public.alert_claim('dies-mid-send', 50) where channel_name = 'orphan'`;
    expect(claimed.attempt).toBe(1);
    await dispatch();
    expect((await deliveriesOf('orphan'))[0].status, 'still leased to the dead dispatcher').toBe('sending');
    await stack.db.sql`update public.alert_deliveries set locked_until = now() - interval '1 second' where id = ${claimed.id}`;
    expect((await dispatch()).json).toMatchObject({ delivered: 1 });
    const [row] = await deliveriesOf('orphan');
    expect(row).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(receiver.on('/orphan')).toHaveLength(1);
    // the dead dispatcher's late answer cannot overwrite the result
    const [{ late }] = await stack.db.sql`select public.alert_complete(${claimed.id}, 1, false, 500) as late`;
    expect(late).toBe('stale');
  });

  it('never stores a channel secret in an error message', async () => {
    await channel('leaky', 'telegram', null, '123456:bot-token-never-logged', { chat_id: 42 });
    await stack.db.sql`update public.alert_channels set endpoint = 'http://127.0.0.1:1' where name = 'leaky'`;
    await downAgent('leaky-1');
    await dispatch();
    const [row] = await deliveriesOf('leaky');
    expect(row.status).toBe('pending');
    expect(row.last_error).toBeTruthy();
    expect(row.last_error).not.toContain('bot-token-never-logged');
  });
});

describe('channels: each one its own payload, at a configurable endpoint', () => {
  it('Slack incoming webhook: text and blocks', async () => {
    await channel('slack', 'slack', '/services/T0/B0/slacksecret', null);
    await downAgent('slack-1', 'disk <full> & more');
    await dispatch();
    const [request] = receiver.on('/services/T0/B0/slacksecret');
    expect(request.json.text).toBe('🔴 slack-1 is down: error');
    expect(request.json.blocks[0].text.text).toContain('disk &lt;full&gt; &amp; more');
  });

  it('Discord webhook: one embed, mentions off', async () => {
    await channel('discord', 'discord', '/api/webhooks/1/discordsecret', null);
    await downAgent('discord-1');
    await dispatch();
    const [request] = receiver.on('/api/webhooks/1/discordsecret');
    expect(request.json).toMatchObject({
      allowed_mentions: { parse: [] },
      embeds: [{ title: 'discord-1 is down: error', color: 0xd92d20 }],
    });
  });

  it('Telegram bot: sendMessage with chat_id, the token in the path', async () => {
    await channel('telegram', 'telegram', '/tg', '999:telegram-token', { chat_id: '-100123' });
    await downAgent('telegram-1');
    await dispatch();
    const [request] = receiver.on('/tg/bot999:telegram-token/sendMessage');
    expect(request.json.chat_id).toBe('-100123');
    expect(request.json.text).toMatch(/^🔴 telegram-1 is down: error\nit broke/);
  });

  it('ntfy: a JSON message to the server root, with an access token', async () => {
    await channel('ntfy', 'ntfy', '/ntfy', 'tk_ntfytoken', { topic: 'agents' });
    await downAgent('ntfy-1');
    await dispatch();
    const [request] = receiver.on('/ntfy/');
    expect(request.headers.authorization).toBe('Bearer tk_ntfytoken');
    expect(request.json).toMatchObject({ topic: 'agents', title: 'ntfy-1 is down: error', priority: 5, tags: ['rotating_light'] });
  });

  it('e-mail through Resend and through Postmark', async () => {
    await channel('resend', 'email', '/emails', 're_key', { from: 'alerts@example.com', to: 'a@example.com, b@example.com' });
    await channel('postmark', 'email', '/email', 'pm-token', { provider: 'postmark', from: 'alerts@example.com', to: 'ops@example.com' });
    await downAgent('resend-1');
    await downAgent('postmark-1');
    await dispatch();
    const [resend] = receiver.on('/emails');
    expect(resend.headers.authorization).toBe('Bearer re_key');
    expect(resend.json).toMatchObject({
      from: 'alerts@example.com',
      to: ['a@example.com', 'b@example.com'],
      subject: '[agent-status] resend-1 is down: error',
    });
    const [postmark] = receiver.on('/email');
    expect(postmark.headers['x-postmark-server-token']).toBe('pm-token');
    expect(postmark.json).toMatchObject({ From: 'alerts@example.com', To: 'ops@example.com', MessageStream: 'outbound' });
    expect(postmark.json.TextBody).toContain('postmark-1 is down');
  });

  it('PagerDuty Events v2: trigger on down, resolve on recovery, one dedup key per incident', async () => {
    receiver.answer('/v2/enqueue', { status: 202, body: '{"status":"success"}' });
    await channel('pagerduty', 'pagerduty', '/v2/enqueue', 'R0UTINGKEY');
    await downAgent('pagerduty-1');
    await dispatch();
    await flip('pagerduty-1', 'running');
    await dispatch();
    await flip('pagerduty-1', 'error', 'again');
    await dispatch();
    const [trigger, resolve, next] = receiver.on('/v2/enqueue').map((r) => r.json);
    expect(trigger).toMatchObject({
      routing_key: 'R0UTINGKEY',
      event_action: 'trigger',
      payload: { summary: 'pagerduty-1 is down: error', severity: 'critical', component: 'pagerduty-1' },
    });
    expect(resolve).toEqual({ routing_key: 'R0UTINGKEY', dedup_key: trigger.dedup_key, event_action: 'resolve' });
    expect(next.event_action).toBe('trigger');
    expect(next.dedup_key).not.toBe(trigger.dedup_key);
  });

  it('"send test" on PagerDuty is a change event, which opens no incident', async () => {
    receiver.answer('/v2/change/enqueue', { status: 202, body: '{"status":"success"}' });
    const [{ id }] = await stack.db.sql`select public.alert_channel_test('pagerduty') as id`;
    await dispatch();
    const [row] = await stack.db.sql`select status from public.alert_deliveries where id = ${id}`;
    expect(row.status).toBe('delivered');
    const [change] = receiver.on('/v2/change/enqueue').map((r) => r.json);
    expect(change).toMatchObject({ routing_key: 'R0UTINGKEY', payload: { source: 'agent-status' } });
    expect(change.payload.summary).toMatch(/^agent-status test notification: Sent by /);
    expect(change).not.toHaveProperty('event_action');
  });

  it('"send test" queues a test notice an operator can watch', async () => {
    const [{ id }] = await stack.db.sql`select public.alert_channel_test('slack') as id`;
    await dispatch();
    const [row] = await stack.db.sql`select status, kind from public.alert_deliveries where id = ${id}`;
    expect(row).toEqual({ status: 'delivered', kind: 'test' });
    expect(receiver.on('/services/T0/B0/slacksecret').at(-1)!.json.text).toBe('ℹ️ agent-status test notification');
  });
});

describe('rules, end to end: what the receiver gets', () => {
  it('a runner with 50 agents going silent: one "host silent" request per channel, not 50', async () => {
    await channel('rack', 'webhook', '/rack', null);
    await stack.db.sql`select public.alert_channel_rules('rack', '{"agents": null, "hosts": ["rack-9"]}')`;
    const names = Array.from({ length: 50 }, (_, i) => `rack-agent-${i}`);
    await registerRunner(stack.db.sql, 'rack-9', names);
    await stack.db.sql`update public.agent_status set host = 'rack-9' where agent_name like 'rack-agent-%'`;
    for (const name of names) await setAgentState(stack.db.sql, name, 'running');
    await stack.db.sql`update public.runners set last_seen_at = now() - interval '10 minutes' where host = 'rack-9'`;
    await stack.db.sql`update public.agent_status set stale_at = now() - interval '1 second' where agent_name like 'rack-agent-%'`;
    await stack.db.sql`select public.agent_status_sweep()`;
    await dispatch();
    expect(receiver.on('/rack').map((r) => r.json.title)).toEqual(['host rack-9 is silent: 50 agents']);
  });

  it('a recovery within the grace delay: the receiver gets nothing at all', async () => {
    await channel('patient', 'webhook', '/patient', null);
    await stack.db.sql`select public.alert_channel_rules('patient', '{"grace_s": 60}')`;
    await downAgent('patient-1');
    await dispatch();
    await flip('patient-1', 'running');
    await stack.db.sql`update public.alert_deliveries set due_at = now() where status = 'pending'`;
    await dispatch();
    expect(receiver.on('/patient')).toEqual([]);
  });

  it('an agent flapping: down, up, down, up, then one "flapping" request', async () => {
    await channel('flap', 'webhook', '/flap', null);
    await stack.db.sql`select public.alert_channel_rules('flap', '{"flap_threshold": 3}')`;
    await setAgentState(stack.db.sql, 'flap-1', 'running');
    for (let i = 0; i < 5; i++) {
      await flip('flap-1', 'error', `crash ${i}`);
      await flip('flap-1', 'running');
      await dispatch();
    }
    expect(receiver.on('/flap').map((r) => r.json.kind)).toEqual(['down', 'up', 'down', 'up', 'flapping']);
  });

  it('PagerDuty and flapping: every trigger has its resolve, however the flapping ends (issue 19, case 8)', async () => {
    receiver.answer('/pd-flap', { status: 202, body: '{"status":"success"}' });
    await channel('pdflap', 'pagerduty', '/pd-flap', 'R0UTINGKEY');
    await stack.db.sql`select public.alert_channel_rules('pdflap', '{"flap_threshold": 3, "flap_window_s": 3600}')`;
    /** The dedup keys triggered and not resolved since, in the order PagerDuty got them. */
    const open = () => {
      const keys = new Set<string>();
      for (const { json } of receiver.on('/pd-flap')) {
        if (json.event_action === 'trigger') keys.add(json.dedup_key);
        if (json.event_action === 'resolve') keys.delete(json.dedup_key);
      }
      return [...keys];
    };
    const flapping = async (agent: string) => {
      await setAgentState(stack.db.sql, agent, 'running');
      for (let i = 0; i < 4; i++) {
        await flip(agent, 'error', `crash ${i}`);
        await flip(agent, 'running');
        await dispatch();
      }
      expect(
        receiver
          .on('/pd-flap')
          .filter((r) => r.json.payload?.component === agent)
          .map((r) => r.json.payload.class),
      ).toEqual(['down', 'down', 'flapping']);
    };
    // the window passes (flap_window_s with no down flip), as alert_tick sees it at the next dispatch
    const calmed = (agent: string) => stack.db.sql`
      update agent_private.alert_states set flapping_until = now() - interval '1 second'
      where subject = (select 'agent:' || id from public.agent_status where agent_name = ${agent})`;

    // 1. it calms down running
    await flapping('pdflap-1');
    expect(open()).toHaveLength(1);
    await calmed('pdflap-1');
    await dispatch();
    expect(open()).toEqual([]);

    // 2. it calms down while an operator snoozed it: the recovery is told all the same (a snooze
    // held it back, and the flapping incident stayed open in PagerDuty for good)
    await flapping('pdflap-2');
    await stack.db.sql`select public.alert_pause('pdflap-2', null, now() + interval '1 hour', 'looking into it')`;
    await calmed('pdflap-2');
    await dispatch();
    expect(open()).toEqual([]);

    // 3. it stops flapping down: the same incident goes on, and its recovery resolves it
    await flapping('pdflap-3');
    await flip('pdflap-3', 'error', 'for good');
    await calmed('pdflap-3');
    await dispatch();
    const [key] = open();
    expect(receiver.on('/pd-flap').at(-1)!.json).toMatchObject({ event_action: 'trigger', dedup_key: key });
    await flip('pdflap-3', 'running');
    await dispatch();
    expect(open()).toEqual([]);
  });

  it('a snoozed agent that went down alerts once when the snooze ends', async () => {
    await channel('snooze', 'webhook', '/snooze', null);
    await setAgentState(stack.db.sql, 'snooze-1', 'running');
    await stack.db.sql`select public.alert_pause('snooze-1', null, now() + interval '1 hour', 'deploy')`;
    await flip('snooze-1', 'error', 'deploy broke it');
    await dispatch();
    expect(receiver.on('/snooze')).toEqual([]);
    await stack.db.sql`update public.alert_pauses set until = now() where ended_at is null`;
    await dispatch();
    expect(receiver.on('/snooze').map((r) => [r.json.kind, r.json.after_pause])).toEqual([['down', true]]);
  });
});
