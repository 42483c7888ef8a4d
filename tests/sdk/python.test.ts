// The Python module's promises beyond the seed snippet (agents.test.ts): cheap however often the
// agent calls it, and never slow when the service is down.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { createToken } from '../helpers/agents.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { startRelay, type Relay } from './relay.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const stack = useTestStack({ functions: true });
let relay: Relay;

beforeAll(async () => {
  relay = await startRelay(stack.url);
});
afterAll(() => relay.close());

async function busyAgent(name: string, url: string, env: Record<string, string> = {}) {
  const token = await createToken(stack.db.sql, 'agent', { agent: name });
  const started = Date.now();
  const { stdout, stderr } = await promisify(execFile)('python3', [join(HERE, 'fixtures', 'busy_agent.py'), name, '3'], {
    cwd: ROOT,
    timeout: 30_000,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PYTHONPATH: join(ROOT, 'shared', 'python'),
      PYTHONDONTWRITEBYTECODE: '1',
      AGENT_STATUS_URL: url,
      AGENT_STATUS_TOKEN: token,
      ...env,
    },
  });
  const [, calls, slowestMs, lastActivity] = /calls (\d+) slowest_ms ([\d.]+) last_activity (batch \d+)/.exec(stdout)!;
  return { calls: Number(calls), slowestMs: Number(slowestMs), lastActivity, stderr, seconds: (Date.now() - started) / 1000 };
}

describe('Python module', () => {
  it('sends one heartbeat per interval and the latest activity with it, however often it is called', async () => {
    relay.sent.length = 0;
    const run = await busyAgent('busy', relay.url, { AGENT_STATUS_HEARTBEAT_INTERVAL: '1' });
    expect(run.calls).toBeGreaterThan(500);
    const heartbeats = relay.sent.filter((path) => path === 'heartbeat').length;
    // started (report), the first status (health 90: a change, at once), then about one heartbeat a second, stopped (report)
    expect(heartbeats).toBeLessThanOrEqual(6);
    expect(relay.sent.filter((path) => path === 'report')).toHaveLength(2);
    const [row] = await stack.db.sql`select status, health, last_activity from public.agent_status where agent_name = 'busy'`;
    expect(row).toEqual({ status: 'stopped', health: 0, last_activity: run.lastActivity });
    expect(run.stderr).toBe('');
  });

  it('accepts status "stopped" in update_agent_status, as the seed did', async () => {
    const token = await createToken(stack.db.sql, 'agent', { agent: 'seed-style' });
    const script = [
      'import agent_status_updater as asu',
      'asu.mark_agent_started("seed-style")',
      'asu.update_agent_status("seed-style", "stopped", 0, "finished the batch")',
      'print(asu.flush(10))',
    ].join('\n');
    const { stdout } = await promisify(execFile)('python3', ['-c', script], {
      cwd: ROOT,
      timeout: 30_000,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        PYTHONPATH: join(ROOT, 'shared', 'python'),
        PYTHONDONTWRITEBYTECODE: '1',
        AGENT_STATUS_URL: stack.url,
        AGENT_STATUS_TOKEN: token,
      },
    });
    expect(stdout.trim()).toBe('True');
    const [row] = await stack.db.sql`select status, last_activity from public.agent_status where agent_name = 'seed-style'`;
    expect(row).toEqual({ status: 'stopped', last_activity: 'finished the batch' });
  });

  it('replaces NUL and lone surrogates, so a warning carrying one still switches the status', async () => {
    const token = await createToken(stack.db.sql, 'agent', { agent: 'py-unicode' });
    const script = [
      'import agent_status_updater as asu',
      'asu.mark_agent_started("py-unicode")',
      'asu.report_warning("py-unicode", "disk\\x00full \\ud800", 40)',
      'print(asu.flush(10))',
    ].join('\n');
    const { stdout, stderr } = await promisify(execFile)('python3', ['-c', script], {
      cwd: ROOT,
      timeout: 30_000,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        PYTHONPATH: join(ROOT, 'shared', 'python'),
        PYTHONDONTWRITEBYTECODE: '1',
        AGENT_STATUS_URL: stack.url,
        AGENT_STATUS_TOKEN: token,
      },
    });
    expect(stderr).toBe('');
    expect(stdout.trim()).toBe('True');
    // the switch to warning is recorded (the process then ended, and its exit marked the agent stopped)
    const events = await stack.db.sql`
      select e.kind, e.to_status, e.health, e.message from public.agent_events e join public.agent_status a on a.id = e.agent_id
      where a.agent_name = 'py-unicode' and e.kind = 'warning'`;
    expect(events).toEqual([{ kind: 'warning', to_status: 'warning', health: 40, message: 'disk\ufffdfull \ufffd' }]);
    const [row] = await stack.db.sql`select status, last_warning from public.agent_status_live where agent_name = 'py-unicode'`;
    expect(row).toEqual({ status: 'stopped', last_warning: 'disk\ufffdfull \ufffd' });
  });

  it('returns at once from every call while the service is down, and exits within its flush deadline', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const run = await busyAgent('unheard', nowhere, { AGENT_STATUS_HEARTBEAT_INTERVAL: '1', AGENT_STATUS_FLUSH_TIMEOUT: '2' });
    expect(run.slowestMs).toBeLessThan(50);
    expect(run.seconds).toBeLessThan(3 + 2 + 2); // its 3 s of work, the 2 s deadline, and Python's start
    // one line when it loses the service and one when it gives up, not one per attempt
    expect(run.stderr.trim().split('\n')).toHaveLength(2);
    expect(run.stderr).toMatch(/cannot reach .*retrying with backoff/);
    expect(run.stderr).toMatch(/gave up waiting for \d+ undelivered report\(s\)/);
  });
});
