// The TypeScript SDK's promises, in process against the real functions: cheap by default, never
// blocking or throwing when the service is down, a bounded buffer, refused reports not retried. A
// relay in front of the gateway (relay.ts) counts the requests the SDK really sends.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { createToken } from '../helpers/agents.ts';
import { AgentStatus, flushAll, markAgentStarted, markAgentStopped, reportWarning, updateAgentStatus } from '../../shared/sdk/index.ts';
import { startRelay, type Relay } from './relay.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const stack = useTestStack({ functions: true });

let relay: Relay;
let relayUrl: string;
let sent: string[];
beforeAll(async () => {
  relay = await startRelay(stack.url);
  relayUrl = relay.url;
  sent = relay.sent;
});
afterAll(() => relay.close());
beforeEach(() => {
  sent.length = 0;
});
// Every client a test made is closed after it, passed or failed, so no timer outlives its test.
const clients: AgentStatus[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close(100)));
});

async function agent(name: string, options: ConstructorParameters<typeof AgentStatus>[0] = {}) {
  const token = await createToken(stack.db.sql, 'agent', { agent: name });
  const logs: string[] = [];
  const status = new AgentStatus({ url: relayUrl, token, agentName: name, log: (line) => logs.push(line), ...options });
  clients.push(status);
  return { status, logs };
}

async function row(name: string) {
  const [found] = await stack.db
    .sql`select status, health, last_activity, status_reason, last_heartbeat from public.agent_status where agent_name = ${name}`;
  return found;
}

describe('TypeScript SDK', () => {
  it('sends at most one heartbeat per interval however often the agent calls it', async () => {
    const { status } = await agent('chatty', { heartbeatIntervalMs: 1_000 });
    status.markStarted();
    await status.flush();
    const started = Date.now();
    while (Date.now() - started < 2_500) {
      status.heartbeat();
      status.updateStatus({ status: 'running', lastActivity: `item ${Date.now()}` }); // same status: rides on the heartbeat
      await sleep(10);
    }
    await status.close();
    const heartbeats = sent.filter((path) => path === 'heartbeat').length;
    expect(heartbeats).toBeGreaterThanOrEqual(1);
    expect(heartbeats).toBeLessThanOrEqual(4); // ~250 calls in 2.5 s at a 1 s interval
    expect((await row('chatty')).last_activity).toMatch(/^item \d+$/);
  });

  it('sends a changed status or health at once', async () => {
    const { status } = await agent('prompt', { heartbeatIntervalMs: 60_000 });
    status.markStarted();
    status.updateStatus({ status: 'warning', health: 40, lastActivity: 'degraded' });
    const deadline = Date.now() + 5_000;
    while ((await row('prompt')).status !== 'warning' && Date.now() < deadline) await sleep(50);
    expect(await row('prompt')).toMatchObject({ status: 'warning', health: 40, last_activity: 'degraded' });
    status.markStopped();
    await status.close();
  });

  it('does not hold a state change back behind a heartbeat waiting for its slot', async () => {
    const { status } = await agent('waiting', { heartbeatIntervalMs: 60_000 });
    status.markStarted();
    await status.flush();
    status.heartbeat(); // waits up to a minute for its slot
    status.reportWarning('queue is growing', 70);
    const deadline = Date.now() + 3_000;
    while ((await row('waiting')).status !== 'warning') {
      expect(Date.now()).toBeLessThan(deadline);
      await sleep(50);
    }
  });

  it('reports again after it was closed and started once more', async () => {
    const { status } = await agent('again', { heartbeatIntervalMs: 60_000 });
    status.markStarted();
    status.markStopped();
    await status.close();
    status.markStarted();
    const deadline = Date.now() + 3_000;
    while ((await row('again')).status !== 'running') {
      expect(Date.now()).toBeLessThan(deadline);
      await sleep(50);
    }
  });

  it('neither blocks nor throws while the service is down, keeps a bounded buffer, and delivers in order when it returns', async () => {
    const { status, logs } = await agent('patient', { heartbeatIntervalMs: 200, maxPending: 5, maxBackoffMs: 500, requestTimeoutMs: 500 });
    status.markStarted();
    await status.flush();
    await stack.gateway.stop();
    try {
      const started = performance.now();
      for (let i = 0; i < 200; i++) {
        status.heartbeat();
        status.reportWarning(`warning ${i}`, i % 100);
      }
      expect(performance.now() - started).toBeLessThan(200); // 400 calls, no waiting on the network
      expect(await status.flush(1_000)).toBe(false);
      // the last five warnings, and at most one heartbeat (the timer's, after the last warning)
      expect(status.pending).toBeGreaterThanOrEqual(5);
      expect(status.pending).toBeLessThanOrEqual(6);
      expect(logs.join('\n')).toMatch(/keeping \d+ report\(s\) and retrying/);
      expect(logs.join('\n')).toMatch(/dropping the oldest/);
    } finally {
      await stack.gateway.start();
    }
    expect(await status.flush(10_000)).toBe(true);
    expect(await row('patient')).toMatchObject({ status: 'warning', status_reason: 'warning 199', health: 99 });
    const warnings = await stack.db.sql`
      select e.message from public.agent_events e join public.agent_status a on a.id = e.agent_id
      where a.agent_name = 'patient' and e.kind = 'warning' order by e.id`;
    expect(warnings.map((w) => w.message)).toEqual(['warning 195', 'warning 196', 'warning 197', 'warning 198', 'warning 199']);
    status.markStopped();
    await status.close();
  });

  it('does not retry what the service refused, and says why', async () => {
    const { status, logs } = await agent('impostor');
    const other = await agent('victim');
    const wrong = new AgentStatus({
      url: relayUrl,
      token: other.status.config.token,
      agentName: 'impostor',
      log: (line) => logs.push(line),
    });
    clients.push(wrong);
    wrong.markStarted();
    expect(await wrong.flush(5_000)).toBe(true);
    expect(sent.filter((path) => path === 'report')).toHaveLength(1);
    expect(logs.join('\n')).toMatch(/report refused: token is missing, unknown, revoked, or not allowed to speak for agent 'impostor'/);
    expect((await row('impostor')).status).toBe('stopped');
    wrong.markStopped();
    await wrong.close(100);
    await status.close(100);
  });

  it('checks what it sends against the API schemas and says what is wrong instead of sending it', async () => {
    const { status, logs } = await agent('careless');
    status.updateStatus({ status: 'running', health: 150 });
    await status.close();
    expect(sent).toHaveLength(0);
    expect(logs).toEqual(['not sent: health must be between 0 and 100']);
  });

  it('replaces NUL and lone surrogates instead of losing the state change they ride on', async () => {
    const { status, logs } = await agent('unicode-mess');
    status.markStarted();
    status.reportWarning('disk\u0000full \ud800', 40);
    status.updateStatus({ lastActivity: 'page \udc00 3' });
    expect(await status.close()).toBe(true);
    expect(logs).toEqual([]);
    expect(await row('unicode-mess')).toMatchObject({ status: 'warning', health: 40, status_reason: 'disk\ufffdfull \ufffd' });
  });

  it('without configuration it says so once and does nothing', async () => {
    const logs: string[] = [];
    const status = new AgentStatus({ url: '', token: '', agentName: 'nobody', log: (line) => logs.push(line) });
    status.markStarted();
    status.heartbeat();
    status.reportError(new Error('x'));
    expect(await status.close()).toBe(true);
    expect(logs).toEqual(['status reporting is off: set AGENT_STATUS_URL (or the url option), AGENT_STATUS_TOKEN (or the token option)']);
    expect(sent).toHaveLength(0);
  });

  it("offers the seed's module-level functions, configured from the environment", async () => {
    const token = await createToken(stack.db.sql, 'agent', { agent: 'seed-port' });
    Object.assign(process.env, { AGENT_STATUS_URL: relayUrl, AGENT_STATUS_TOKEN: token, AGENT_STATUS_HEARTBEAT_INTERVAL: '0' });
    try {
      markAgentStarted('seed-port');
      updateAgentStatus('seed-port', 'running', 95, 'Fetching tweets');
      reportWarning('seed-port', 'rate limited', 60);
      expect(await flushAll(5_000)).toBe(true);
      expect(await row('seed-port')).toMatchObject({
        status: 'warning',
        health: 60,
        status_reason: 'rate limited',
        last_activity: 'Fetching tweets',
      });
      markAgentStopped('seed-port');
      expect(await flushAll(5_000)).toBe(true);
      expect((await row('seed-port')).status).toBe('stopped');
    } finally {
      for (const name of ['AGENT_STATUS_URL', 'AGENT_STATUS_TOKEN', 'AGENT_STATUS_HEARTBEAT_INTERVAL']) delete process.env[name];
    }
  });

  it('runs under Deno too', async () => {
    const token = await createToken(stack.db.sql, 'agent', { agent: 'deno-agent' });
    const { stdout } = await promisify(execFile)(
      join(ROOT, 'node_modules', '.bin', 'deno'),
      ['run', '--allow-net', '--allow-env', '--allow-read', join(HERE, 'fixtures', 'deno-agent.ts')],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          AGENT_STATUS_URL: stack.url,
          AGENT_STATUS_TOKEN: token,
          AGENT_NAME: 'deno-agent',
        },
        timeout: 60_000,
      },
    );
    expect(stdout).toContain('delivered: true');
    const events = await stack.db.sql`
      select e.kind from public.agent_events e join public.agent_status a on a.id = e.agent_id
      where a.agent_name = 'deno-agent' and e.kind in ('started', 'warning', 'stopped') order by e.id`;
    expect(events.map((e) => e.kind)).toEqual(['started', 'warning', 'stopped']);
    expect(await row('deno-agent')).toMatchObject({ status: 'stopped', last_activity: 'running under Deno' });
  });
});
