// Real agent processes reporting through the SDKs to the functions served by Deno: a Python agent
// integrated with the seed's snippet verbatim (fixtures/tweet_agent.py) and a Node agent using the
// TypeScript SDK's run() (fixtures/node-agent.ts). Each lifecycle is checked in the database.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, expect, beforeAll, beforeEach, afterEach, afterAll } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { createToken } from '../helpers/agents.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const PYTHON_AGENT = 'Tweet Scraping Agent';
const NODE_AGENT = 'Feed Crawler';

const stack = useTestStack({ functions: true });
const tokens: Record<string, string> = {};
const scratch = mkdtempSync(join(tmpdir(), 'agent-status-sdk-'));

interface Agent {
  child: ChildProcess;
  output: () => string;
  loops: () => number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}
const running = new Set<Agent>();

function startAgent(kind: 'python' | 'node', env: Record<string, string> = {}): Agent {
  const [command, args, name] =
    kind === 'python'
      ? ['python3', [join(HERE, 'fixtures', 'tweet_agent.py')], PYTHON_AGENT]
      : [process.execPath, ['--import', 'tsx', join(HERE, 'fixtures', 'node-agent.ts')], NODE_AGENT];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PYTHONPATH: join(ROOT, 'shared', 'python'),
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      AGENT_STATUS_URL: stack.url,
      AGENT_STATUS_TOKEN: tokens[name],
      AGENT_NAME: name,
      AGENT_STATUS_HEARTBEAT_INTERVAL: '1',
      AGENT_STATUS_MAX_BACKOFF: '2',
      AGENT_STATUS_FLUSH_TIMEOUT: '3',
      FIXTURE_DIR: scratch,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const agent: Agent = {
    child,
    output: () => output,
    loops: () => (output.match(/^loop \d+$/gm) ?? []).length,
    exited: new Promise((done) => child.once('exit', (code, signal) => done({ code, signal }))),
  };
  running.add(agent);
  void agent.exited.then(() => running.delete(agent));
  return agent;
}

async function row(name: string) {
  const [found] = await stack.db.sql`
    select status, health, last_error, status_reason, last_activity, last_heartbeat
    from public.agent_status where agent_name = ${name}`;
  return found;
}

/** Polls the agent's row until check passes; fails with the last row and the agent's output. */
async function until(name: string, check: (r: Awaited<ReturnType<typeof row>>) => boolean, agent?: Agent, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let last: Awaited<ReturnType<typeof row>> | undefined;
  while (Date.now() < deadline) {
    last = await row(name);
    if (last && check(last)) return last;
    await sleep(100);
  }
  throw new Error(`agent ${name} never reached the expected state; last row ${JSON.stringify(last)}\n${agent?.output() ?? ''}`);
}

/** Waits until the agent's main loop runs (its handlers are installed by then). */
async function looping(agent: Agent) {
  const deadline = Date.now() + 15_000;
  while (agent.loops() < 2) {
    if (Date.now() > deadline || agent.child.exitCode !== null) throw new Error(`agent never looped:\n${agent.output()}`);
    await sleep(50);
  }
}

async function warningsOf(name: string) {
  const rows = await stack.db.sql`
    select e.message from public.agent_events e join public.agent_status a on a.id = e.agent_id
    where a.agent_name = ${name} and e.kind = 'warning' order by e.id`;
  return rows.map((r) => r.message as string);
}

async function exitOf(agent: Agent, timeoutMs: number) {
  const timer = sleep(timeoutMs).then(() => 'timeout' as const);
  const result = await Promise.race([agent.exited, timer]);
  if (result === 'timeout') throw new Error(`agent did not exit within ${timeoutMs} ms:\n${agent.output()}`);
  return result;
}

beforeAll(async () => {
  tokens[PYTHON_AGENT] = await createToken(stack.db.sql, 'agent', { agent: PYTHON_AGENT });
  tokens[NODE_AGENT] = await createToken(stack.db.sql, 'agent', { agent: NODE_AGENT });
});

beforeEach(async () => {
  for (const name of [PYTHON_AGENT, NODE_AGENT]) await stack.db.sql`select public.force_agent_status(${name}, 'stopped')`;
});

afterEach(async () => {
  await stack.gateway.start().catch(() => {}); // a failed outage test must not leave the API down
  rmSync(join(scratch, 'warn'), { force: true });
  for (const agent of running) {
    agent.child.kill('SIGKILL');
    await agent.exited;
  }
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.each([
  ['Python (the seed snippet verbatim)', 'python', PYTHON_AGENT, 'Tweet store unreachable: connection refused'],
  ['Node (TypeScript SDK run())', 'node', NODE_AGENT, 'feed parser crashed: unexpected end of input'],
] as const)('%s agent', (_, kind, name, crashMessage) => {
  it('started -> running with heartbeats -> SIGTERM -> stopped', async () => {
    const agent = startAgent(kind);
    await looping(agent);
    const first = await until(name, (r) => r.status === 'running' && r.last_heartbeat !== null, agent);
    // the automatic heartbeat (every 1 s here) keeps moving last_heartbeat while the agent runs
    const later = await until(name, (r) => r.last_heartbeat > first.last_heartbeat, agent, 5_000);
    await until(name, (r) => r.last_heartbeat > later.last_heartbeat, agent, 5_000);
    expect(await row(name)).toMatchObject({ status: 'running', health: kind === 'python' ? 95 : 90 });

    agent.child.kill('SIGTERM');
    const exit = await exitOf(agent, 10_000);
    if (kind === 'python') {
      expect(exit.code).toBe(0); // the snippet's handler calls sys.exit(0)
      expect(agent.output()).toMatch(/Shutting down gracefully/);
    } else {
      expect(exit.signal).toBe('SIGTERM'); // the SDK re-raises the signal after its flush
    }
    expect(agent.output()).not.toMatch(/Traceback|Error:/);
    expect(await row(name)).toMatchObject({ status: 'stopped', health: 0 });
  });

  it('an uncaught error -> error with its message', async () => {
    const agent = startAgent(kind, { FIXTURE_FAIL_AFTER: '5' });
    const exit = await exitOf(agent, 15_000);
    expect(exit.code).not.toBe(0); // the error still fails the process, as it would without the SDK
    expect(agent.output()).toContain(crashMessage);
    // the exit handler's "stopped" does not hide the crash
    expect(await row(name)).toMatchObject({ status: 'error', last_error: crashMessage });
  });
});

describe('the service down for 20 s while agents run', () => {
  it('agents keep running, nothing throws into them, and what they said arrives after the service returns', async () => {
    const agents: Record<string, Agent> = { [PYTHON_AGENT]: startAgent('python'), [NODE_AGENT]: startAgent('node') };
    for (const [name, agent] of Object.entries(agents)) {
      await until(name, (r) => r.status === 'running', agent);
      await looping(agent);
    }

    await stack.gateway.stop();
    const loopsBefore = Object.values(agents).map((agent) => agent.loops());
    writeFileSync(join(scratch, 'warn'), ''); // both agents report a warning while the service is down
    await sleep(20_000);
    Object.values(agents).forEach((agent, i) => {
      expect(agent.child.exitCode, agent.output()).toBeNull();
      // 100 ms per loop: a blocked agent would show far fewer than 100 loops in 20 s
      expect(agent.loops() - loopsBefore[i]).toBeGreaterThan(100);
    });
    expect((await row(PYTHON_AGENT)).status).toBe('running'); // nothing could arrive meanwhile

    await stack.gateway.start();
    // The warning arrives, then the "running" each agent's loop has said since (in that order).
    const expected = { [PYTHON_AGENT]: 'Twitter API rate limit reached', [NODE_AGENT]: 'feed backlog above 10000 items' };
    const deadline = Date.now() + 15_000;
    for (const [name, message] of Object.entries(expected)) {
      while (!(await warningsOf(name)).includes(message)) {
        if (Date.now() > deadline) throw new Error(`the warning of ${name} never arrived:\n${agents[name].output()}`);
        await sleep(100);
      }
      await until(name, (r) => r.status === 'running' && r.health === (name === PYTHON_AGENT ? 95 : 90), agents[name]);
    }

    for (const agent of Object.values(agents)) agent.child.kill('SIGTERM');
    for (const agent of Object.values(agents)) await exitOf(agent, 10_000);
    for (const [name, agent] of Object.entries(agents)) expect((await row(name)).status, agent.output().slice(-2000)).toBe('stopped');
    for (const agent of Object.values(agents)) expect(agent.output()).not.toMatch(/Traceback|Uncaught|Error:/);
  }, 60_000);

  it('an agent told to stop while the service is down exits within its flush deadline', async () => {
    const agents = [startAgent('python'), startAgent('node')];
    await until(PYTHON_AGENT, (r) => r.status === 'running', agents[0]);
    await until(NODE_AGENT, (r) => r.status === 'running', agents[1]);
    for (const agent of agents) await looping(agent);
    await stack.gateway.stop();
    const started = Date.now();
    for (const agent of agents) agent.child.kill('SIGTERM');
    for (const agent of agents) await exitOf(agent, 8_000);
    const took = Date.now() - started;
    expect(took).toBeGreaterThan(2_500); // it did try until its deadline (AGENT_STATUS_FLUSH_TIMEOUT is 3 s here)
    expect(took).toBeLessThan(6_000);
    for (const agent of agents) expect(agent.output()).not.toMatch(/Traceback|Uncaught/);
  }, 30_000);
});
