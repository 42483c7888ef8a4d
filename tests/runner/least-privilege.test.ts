// What a supervised agent can do with what its runner gave it, from the attacker's side: it holds its
// environment (AGENT_STATUS_SOCKET, AGENT_STATUS_TOKEN) and tries to act for the runner or for another
// agent. And which processes a runner takes for its own: a name in the environment proves nothing.
import { createClient } from '@supabase/supabase-js';
import { execa } from 'execa';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { processEnvironment } from '../../runner/daemon/proc.ts';
import { useTestStack } from '../helpers/stack.ts';
import { alive, waitFor } from './helpers.ts';
import { agent, channelPost, enqueue, events, finished, fixtureAgent, makeHost } from './host.ts';

// no edge functions in this stack: supervised agents reach the database through their runner only
const stack = useTestStack();
const REPO = resolve(import.meta.dirname, '../..');

const byHand: { kill(signal: NodeJS.Signals): unknown; pid?: number }[] = [];
afterEach(() => {
  for (const child of byHand.splice(0)) child.kill('SIGKILL');
});

describe('an agent under a runner', () => {
  it("holds no token of its runner: with what it holds it can neither claim the host's commands, re-register the host, nor speak for another agent", async () => {
    const victim = fixtureAgent('forever.sh');
    const attacker = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [victim, attacker]);
    await host.start();
    const { sql } = stack.db;
    await finished(sql, await enqueue(sql, 'start', attacker.name));
    const env = processEnvironment((await agent(sql, attacker.name)).pid!)!;
    const token = env.get('AGENT_STATUS_TOKEN')!;
    expect(token).not.toBe(host.token);
    expect([...env.values()]).not.toContain(host.token);
    expect(env.get('AGENT_STATUS_SOCKET')).toBe(join(host.stateDir, 'channel', 'agents.sock'));

    const pending = await enqueue(sql, 'start', victim.name);
    const snapshot = () => sql`select (select count(*) from public.agent_status)::int as agents,
                                      (select count(*) from public.agent_status where runner_id is not null)::int as managed`;
    const before = await snapshot();
    // straight to PostgREST with the publishable key, as any process on the host could
    const rest = createClient(stack.url, stack.anonKey, { realtime: { transport: WebSocket as never }, auth: { persistSession: false } });
    for (const [fn, args] of [
      ['runner_claim_commands', { p_limit: 10 }],
      ['runner_register', { p_agents: [] }],
      ['runner_register', { p_agents: [{ name: 'planted-1' }, { name: 'planted-2' }] }],
      ['agent_heartbeat', { p_agent_name: attacker.name }],
    ] as const) {
      const { error } = await rest.rpc(fn, { p_token: token, ...args });
      expect(error?.code, `${fn} with the agent's token`).toBe('28000');
    }
    // through its runner's channel: only itself, and only what an agent may say
    const other = await channelPost(env, 'heartbeat', { agent_name: victim.name, status: 'error' }, token);
    expect(other.status).toBe(401);
    expect(other.json.error.message).toMatch(/not allowed to speak for agent/);
    const fakeCrash = await channelPost(env, 'report', { agent_name: attacker.name, event: 'crashed', exit_code: 1 }, token);
    expect(fakeCrash.status).toBe(400);
    const guessed = await channelPost(env, 'heartbeat', { agent_name: attacker.name }, host.token);
    expect(guessed.status).toBe(401);
    expect(await snapshot()).toEqual(before);
    // the runner, not the attacker, carried the command out
    expect(await finished(sql, pending)).toMatchObject({ status: 'succeeded', result: expect.stringMatching(/^started/) });
    expect(await agent(sql, victim.name)).toMatchObject({ status: 'running' });

    // what it may do: speak for itself, through the runner, with no edge function in between
    const own = await channelPost(
      env,
      'heartbeat',
      { agent_name: attacker.name, status: 'warning', health: 42, last_activity: 'working' },
      token,
    );
    expect(own.status).toBe(200);
    expect(own.json.agent).toMatchObject({ agent_name: attacker.name, status: 'warning', health: 42, last_activity: 'working' });
  });

  it('`agent-status run` works unchanged under a runner: it reports through the channel with what the runner gave it', async () => {
    const wrapped = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [
      {
        ...wrapped,
        command: process.execPath,
        args: [join(REPO, 'runner/bin/agent-status.js'), 'run', '--name', wrapped.name, '--', wrapped.command],
      },
    ]);
    await host.start();
    const { sql } = stack.db;
    await finished(sql, await enqueue(sql, 'start', wrapped.name));
    const wrapper = (await agent(sql, wrapped.name)).pid!;
    // the wrapper's own "started" carries its child's pid, which only it knows
    await waitFor('the wrapper to report its child', async () =>
      (await events(sql, wrapped.name)).some((e) => e.kind === 'started' && e.details.pid !== wrapper),
    );
    expect((await agent(sql, wrapped.name)).status).toBe('running');
  });

  it("a restarted agent's previous secret stops working", async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever]);
    await host.start();
    const { sql } = stack.db;
    await finished(sql, await enqueue(sql, 'start', forever.name));
    const first = processEnvironment((await agent(sql, forever.name)).pid!)!;
    await finished(sql, await enqueue(sql, 'restart', forever.name));
    const second = processEnvironment((await agent(sql, forever.name)).pid!)!;
    expect((await channelPost(second, 'heartbeat', { agent_name: forever.name }, first.get('AGENT_STATUS_TOKEN'))).status).toBe(401);
    expect((await channelPost(second, 'heartbeat', { agent_name: forever.name }, second.get('AGENT_STATUS_TOKEN'))).status).toBe(200);
  });

  it("a stopped agent's secret stops working: the row stays stopped", async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever]);
    await host.start();
    const { sql } = stack.db;
    await finished(sql, await enqueue(sql, 'start', forever.name));
    const env = await waitFor('the agent running with its environment', async () => {
      const { pid } = await agent(sql, forever.name);
      return pid ? processEnvironment(pid) : undefined;
    });
    await finished(sql, await enqueue(sql, 'stop', forever.name));
    const secret = env.get('AGENT_STATUS_TOKEN');
    expect((await channelPost(env, 'report', { agent_name: forever.name, event: 'started', pid: 1 }, secret)).status).toBe(401);
    expect((await channelPost(env, 'heartbeat', { agent_name: forever.name, status: 'running', health: 100 }, secret)).status).toBe(401);
    expect(await agent(sql, forever.name)).toMatchObject({ status: 'stopped', pid: null });
  });
});

describe('which processes a runner takes for its own', () => {
  it('a process started by hand with AGENT_NAME set is neither adopted nor signalled: a start starts the real agent', async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever], { scan_interval: '1s' });
    await host.start();
    const impostor = execa('sleep', ['1000'], {
      detached: true,
      cleanup: false,
      stdio: 'ignore',
      reject: false,
      env: { AGENT_NAME: forever.name },
    });
    byHand.push(impostor);
    await waitFor('the impostor to run', () => alive(impostor.pid!));
    const { sql } = stack.db;
    expect(await finished(sql, await enqueue(sql, 'start', forever.name))).toMatchObject({ status: 'succeeded' });
    const started = await agent(sql, forever.name);
    expect(started.pid).not.toBe(impostor.pid);
    expect(await finished(sql, await enqueue(sql, 'stop', forever.name))).toMatchObject({ status: 'succeeded' });
    expect(alive(impostor.pid!)).toBe(true);
    expect((await events(sql, forever.name)).filter((e) => e.kind === 'adopted')).toEqual([]);
  });

  it('a `match` rule never takes a process of another runner or one reporting to another service', async () => {
    const scraper = fixtureAgent('forever.sh', { match: 'forever\\.sh --by-hand' });
    const host = await makeHost(stack, [scraper], { scan_interval: '1h' });
    await host.start();
    const foreign = [{ AGENT_STATUS_RUNNER: 'another-runner-instance' }, { AGENT_STATUS_URL: 'https://another-project.supabase.co' }].map(
      (env) => {
        const child = execa(scraper.command, ['--by-hand'], { detached: true, cleanup: false, stdio: 'ignore', reject: false, env });
        byHand.push(child);
        return child;
      },
    );
    await waitFor('both copies to run', () => foreign.every((child) => alive(child.pid!)));
    const { sql } = stack.db;
    expect(await finished(sql, await enqueue(sql, 'start', scraper.name))).toMatchObject({ status: 'succeeded' });
    expect(foreign.map((child) => child.pid)).not.toContain((await agent(sql, scraper.name)).pid);
    await finished(sql, await enqueue(sql, 'stop', scraper.name));
    expect(foreign.every((child) => alive(child.pid!))).toBe(true);
  });
});
