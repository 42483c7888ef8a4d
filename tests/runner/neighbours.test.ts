// Another user on the same host, as an attacker: `nobody`, through setpriv, against a root runner.
// While the runner is down it tries to read the runner's state, reach its agents' channel or put its
// own socket in the channel's place; it starts a process carrying the runner's mark and the agent's
// command line. And the agents adopted after a restart or a takeover report again.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { processEnvironment } from '../../runner/daemon/proc.ts';
import { useTestStack } from '../helpers/stack.ts';
import { alive, waitFor } from './helpers.ts';
import { agent, channelPost, enqueue, events, finished, fixtureAgent, makeHost } from './host.ts';

const run = promisify(execFile);
const stack = useTestStack();

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('these tests play another local user (nobody) against a root runner: run them as root');
});

const byHand: number[] = [];
afterEach(() => {
  for (const pid of byHand.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

const AS_NOBODY = ['setpriv', '--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', '--'];

/** Runs a Python snippet as nobody; its output, or the error it ended with. */
async function asNobody(python: string): Promise<string> {
  const [command, ...args] = [...AS_NOBODY, '/usr/bin/python3', '-c', python];
  try {
    return (await run(command, args)).stdout.trim();
  } catch (error) {
    return `failed: ${(error as { stderr?: string }).stderr?.trim().split('\n').at(-1)}`;
  }
}

describe('another local user, while the runner is down', () => {
  it("can neither read the runner's state, reach the agents' channel, nor bind a socket in its place; the agents report again through the restarted runner", async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever]);
    // a state folder anyone may walk to, as under a home directory: only the runner's own modes protect it
    chmodSync(dirname(host.stateDir), 0o755);
    const { sql } = stack.db;
    const { process: first } = await host.spawn();
    await finished(sql, await enqueue(sql, 'start', forever.name));
    const pid = (await agent(sql, forever.name)).pid!;
    const env = processEnvironment(pid)!;
    const socket = env.get('AGENT_STATUS_SOCKET')!;
    first.kill('SIGKILL');
    await first;

    const stateFile = join(host.stateDir, 'state.json');
    expect(await asNobody(`print(open(${JSON.stringify(stateFile)}).read())`)).toMatch(/^failed: PermissionError/);
    const connect = `import socket; s = socket.socket(socket.AF_UNIX); s.connect(${JSON.stringify(socket)}); print('connected')`;
    expect(await asNobody(connect)).toMatch(/^failed: (PermissionError|FileNotFoundError)/);
    const squat = `import os, socket; p = ${JSON.stringify(socket)}; os.path.exists(p) and os.unlink(p); socket.socket(socket.AF_UNIX).bind(p); print('bound')`;
    expect(await asNobody(squat)).toMatch(/^failed: PermissionError/);
    expect(await asNobody(`import os; print(os.listdir(${JSON.stringify(dirname(socket))}))`)).toMatch(/^failed: PermissionError/);

    await host.spawn();
    const heartbeat = await channelPost(env, 'heartbeat', { agent_name: forever.name, health: 61 }, env.get('AGENT_STATUS_TOKEN'));
    expect(heartbeat.status).toBe(200);
    expect(heartbeat.json.agent).toMatchObject({ agent_name: forever.name, health: 61 });
    expect(alive(pid)).toBe(true);
  });
});

describe('a takeover from another state folder', () => {
  it("the new runner serves the adopted agents' channel: their reports arrive", async () => {
    const forever = fixtureAgent('forever.sh');
    const first = await makeHost(stack, [forever]);
    const { sql } = stack.db;
    const { process: old } = await first.spawn();
    await finished(sql, await enqueue(sql, 'start', forever.name));
    const pid = (await agent(sql, forever.name)).pid!;
    const env = processEnvironment(pid)!;
    old.kill('SIGKILL');
    await old;

    const second = await makeHost(stack, [forever], {}, first);
    await second.start(() => {}, { takeover: true });
    await waitFor('the agent adopted by the new runner', async () => (await events(sql, forever.name)).some((e) => e.kind === 'adopted'));
    const heartbeat = await channelPost(env, 'heartbeat', { agent_name: forever.name, health: 33 }, env.get('AGENT_STATUS_TOKEN'));
    expect(heartbeat.status).toBe(200);
    expect((await sql`select health from public.agent_status where agent_name = ${forever.name}`)[0].health).toBe(33);
  });
});

describe('an agent flooding its channel', () => {
  it('is held to 2 requests at a time (429 for more); another agent and a restart carry on meanwhile', async () => {
    const flooder = fixtureAgent('forever.sh');
    const victim = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [flooder, victim]);
    await host.start();
    const { sql } = stack.db;
    const envOf = async (name: string) => {
      await finished(sql, await enqueue(sql, 'start', name));
      return waitFor(`${name} running with its environment`, async () => {
        const { pid } = await agent(sql, name);
        return pid ? processEnvironment(pid) : undefined;
      });
    };
    const [flooderEnv, victimEnv] = [await envOf(flooder.name), await envOf(victim.name)];
    const flood = Promise.all(
      Array.from({ length: 100 }, () =>
        channelPost(flooderEnv, 'heartbeat', { agent_name: flooder.name, health: 1 }, flooderEnv.get('AGENT_STATUS_TOKEN')).then(
          ({ status }) => status,
        ),
      ),
    );
    // liveness bounds, not speed claims: the victim is answered, and its restart finishes, during the flood
    const heard = await channelPost(victimEnv, 'heartbeat', { agent_name: victim.name, health: 88 }, victimEnv.get('AGENT_STATUS_TOKEN'));
    expect(heard.status).toBe(200);
    expect(await finished(sql, await enqueue(sql, 'restart', victim.name), 15_000)).toMatchObject({ status: 'succeeded' });
    const statuses = await flood;
    expect(new Set(statuses)).toEqual(new Set([200, 429]));
  });
});

describe('which processes a root runner takes for its own', () => {
  it("another user's process carrying the runner's mark, the agent's name and its command line is not adopted: the real agent starts", async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever]);
    const first = await host.start();
    await first.shutdown({ stopAgents: true });
    const { instance } = JSON.parse(readFileSync(join(host.stateDir, 'state.json'), 'utf8'));
    expect(instance).toMatch(/^[0-9a-f-]{36}$/);
    const impostor = spawn(AS_NOBODY[0], [...AS_NOBODY.slice(1), '/bin/sh', forever.command], {
      detached: true,
      stdio: 'ignore',
      env: { PATH: process.env.PATH, AGENT_NAME: forever.name, AGENT_STATUS_RUNNER: instance },
    });
    byHand.push(impostor.pid!);
    await waitFor('the impostor to run as nobody', () => processEnvironment(impostor.pid!)?.get('AGENT_NAME') === forever.name);

    await host.start();
    const { sql } = stack.db;
    const started = await finished(sql, await enqueue(sql, 'start', forever.name));
    expect(started).toMatchObject({ status: 'succeeded', result: expect.stringMatching(/^started/) });
    expect((await agent(sql, forever.name)).pid).not.toBe(impostor.pid);
    expect((await events(sql, forever.name)).filter((e) => e.kind === 'adopted')).toEqual([]);
    await finished(sql, await enqueue(sql, 'stop', forever.name));
    expect(alive(impostor.pid!)).toBe(true);
  });
});
