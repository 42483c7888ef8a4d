// Issue 11 from an agent's side, with the real TypeScript SDK and Python module against the real
// functions: a main loop that stops calling heartbeat goes stale within its timeout (automatic
// heartbeats are only for agents that never call it), the declared interval sets that timeout, and
// a report buffered through an outage is recorded at the time it was made.
import { execa } from 'execa';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { createToken } from '../helpers/agents.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { AgentStatus } from '../../shared/sdk/index.ts';
import { startRelay } from './relay.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const stack = useTestStack({ functions: true });

const clients: AgentStatus[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close(100)));
});

async function live(name: string) {
  const [row] = await stack.db.sql`select * from public.agent_status_live where agent_name = ${name}`;
  return row;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

async function client(name: string, options: ConstructorParameters<typeof AgentStatus>[0] = {}) {
  const token = await createToken(stack.db.sql, 'agent', { agent: name });
  const status = new AgentStatus({ url: stack.url, token, agentName: name, log: () => {}, ...options });
  clients.push(status);
  return status;
}

describe('truth at the edges, from the SDKs', () => {
  it('TypeScript: a main loop that stops calling heartbeat() goes stale within its timeout, though the process lives', async () => {
    const status = await client('ts-hung', { heartbeatIntervalMs: 1000 });
    status.markStarted();
    for (let turn = 0; turn < 3; turn++) {
      status.heartbeat();
      await sleep(500);
    }
    // the loop hangs here; the client (and its timers) stay alive
    const declared = await live('ts-hung');
    expect(declared).toMatchObject({
      status: 'running',
      heartbeat_interval_s: 1,
      heartbeat_timeout_s: 5,
      heartbeat_timeout_source: 'interval',
    });
    const stale = await until('stale', async () => ((await live('ts-hung')).status === 'stale' ? true : undefined), 15_000);
    expect(stale).toBe(true);
  }, 30_000);

  it('TypeScript: a slow loop (a call every 6 s, the SDK interval 1 s) is not taken for a hung one', async () => {
    const status = await client('ts-slow', { heartbeatIntervalMs: 1000 });
    status.markStarted();
    expect(await status.flush()).toBe(true);
    const seen = new Set<string>();
    for (let turn = 0; turn < 3; turn++) {
      status.heartbeat();
      const until = Date.now() + 6000;
      while (Date.now() < until) {
        seen.add((await live('ts-slow'))?.status);
        await sleep(250);
      }
    }
    expect([...seen].filter(Boolean)).toEqual(['running']);
    // the gap between its calls (a little over 6 s), rounded up
    const row = await live('ts-slow');
    expect(row.heartbeat_interval_s).toBeGreaterThanOrEqual(6);
    expect(row.heartbeat_timeout_s).toBe(Math.ceil(2.5 * row.heartbeat_interval_s));
  }, 45_000);

  it('TypeScript: an agent that never calls heartbeat() is kept alive by the automatic one past its timeout', async () => {
    const status = await client('ts-auto', { heartbeatIntervalMs: 1000 });
    status.markStarted();
    await sleep(7000);
    expect(await live('ts-auto')).toMatchObject({ status: 'running', heartbeat_timeout_s: 5 });
  }, 30_000);

  it('TypeScript: a report buffered through an outage is recorded at the time it was made', async () => {
    const port = await freePort();
    const status = await client('ts-buffered', { url: `http://127.0.0.1:${port}` });
    status.markStarted();
    const made = Date.now();
    status.reportWarning('rate limited while the service was down');
    await sleep(3000);
    const relay = await startRelay(stack.url, port);
    try {
      expect(await status.flush(15_000)).toBe(true);
    } finally {
      await relay.close();
    }
    const [event] = await stack.db.sql`
      select e.at from public.agent_events e join public.agent_status a on a.id = e.agent_id
      where a.agent_name = 'ts-buffered' and e.kind = 'warning'`;
    expect(event.at.getTime()).toBeGreaterThanOrEqual(made - 1000);
    expect(event.at.getTime()).toBeLessThan(made + 1000);
    expect((await live('ts-buffered')).last_warning_at.getTime()).toBe(event.at.getTime());
  }, 30_000);

  it('Python: a main loop that stops calling send_heartbeat goes stale within its timeout', async () => {
    const token = await createToken(stack.db.sql, 'agent', { agent: 'py-hung' });
    const agent = execa('python3', [join(HERE, 'fixtures', 'hung_agent.py'), 'py-hung'], {
      cwd: ROOT,
      env: {
        PYTHONPATH: join(ROOT, 'shared', 'python'),
        PYTHONDONTWRITEBYTECODE: '1',
        AGENT_STATUS_URL: stack.url,
        AGENT_STATUS_TOKEN: token,
        AGENT_STATUS_HEARTBEAT_INTERVAL: '1',
      },
      reject: false,
    });
    try {
      await until('the loop to hang', async () => ((await live('py-hung'))?.status === 'running' ? true : undefined), 15_000);
      expect(await live('py-hung')).toMatchObject({ heartbeat_interval_s: 1, heartbeat_timeout_s: 5 });
      await until('stale', async () => ((await live('py-hung')).status === 'stale' ? true : undefined), 20_000);
      expect(agent.exitCode).toBeNull(); // still running: only its loop hung
    } finally {
      agent.kill('SIGKILL');
      await agent;
    }
  }, 45_000);
  it('Python: a seed-style agent that reports an error and exits stops its uptime at once and keeps the error', async () => {
    const token = await createToken(stack.db.sql, 'agent', { agent: 'py-seed' });
    const agent = await execa('python3', [join(HERE, 'fixtures', 'seed_style_agent.py'), 'py-seed'], {
      cwd: ROOT,
      env: {
        PYTHONPATH: join(ROOT, 'shared', 'python'),
        PYTHONDONTWRITEBYTECODE: '1',
        AGENT_STATUS_URL: stack.url,
        AGENT_STATUS_TOKEN: token,
      },
      reject: false,
    });
    expect(agent.exitCode).toBe(1);
    // the exit handler's stop is delivered before the process ends: no waiting for a deadline
    const row = await live('py-seed');
    expect(row).toMatchObject({ status: 'error', last_error: 'fatal: credentials expired', uptime_s: null });
    expect(row.stopped_at).toBeInstanceOf(Date);
    expect(row.down_s).toBeGreaterThanOrEqual(0);
  }, 30_000);
});
