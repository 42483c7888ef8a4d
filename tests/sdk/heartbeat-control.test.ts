// Stop and restart of agents no runner manages (issue 23), for real: a Python agent (the module,
// configured by its environment alone) and a TypeScript one, no runner anywhere; the operator's wish
// travels in the answer to the agent's next heartbeat, and the agent's stopped (or started) report
// completes the command. From the CLI and from the dashboard in Chromium.
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, stackEnv } from '../cli/helpers.ts';
import { createToken } from '../helpers/agents.ts';
import { useTestStack } from '../helpers/stack.ts';
import { waitFor } from '../runner/helpers.ts';
import { signIn, useServedDashboard } from '../web/helpers.ts';

const stack = useTestStack({ functions: true });
const REPO = resolve(import.meta.dirname, '../..');
const started: ResultPromise[] = [];
afterEach(() => {
  for (const child of started.splice(0)) child.kill('SIGKILL');
});

// a heartbeat a second, so a wish arrives within about a second (the bench measures the default 30 s)
async function pythonAgent(name: string, env: Record<string, string> = {}) {
  const token = await createToken(stack.db.sql, 'agent', { agent: name });
  const child = execa('python3', [join(REPO, 'tests/fixtures/sdk-control-agent.py')], {
    cwd: REPO,
    extendEnv: false,
    reject: false,
    all: true,
    env: {
      PATH: process.env.PATH!,
      HOME: process.env.HOME!,
      PYTHONPATH: join(REPO, 'shared/python'),
      PYTHONDONTWRITEBYTECODE: '1',
      AGENT_STATUS_URL: stack.url,
      AGENT_STATUS_TOKEN: token,
      AGENT_STATUS_HEARTBEAT_INTERVAL: '1',
      AGENT_NAME: name,
      ...env,
    },
  });
  started.push(child);
  let output = '';
  child.all!.on('data', (chunk) => (output += chunk));
  await waitFor(`${name} to run`, async () => (await status(name)) === 'running', 20_000);
  return { child, output: () => output };
}

async function status(name: string): Promise<string | undefined> {
  const [row] = await stack.db.sql`select status from public.agent_status_live where agent_name = ${name}`;
  return row?.status;
}

async function commands(name: string) {
  return stack.db.sql`select c.action, c.status, c.result, c.via_heartbeat from public.agent_commands c
                      join public.agent_status a on a.id = c.agent_id where a.agent_name = ${name} order by c.id`;
}

describe('a Python agent no runner manages, from the CLI', () => {
  it('restarts in place (same pid, started again) and stops the way SIGTERM would; start is refused', async () => {
    const name = 'py-no-runner';
    const agent = await pythonAgent(name);
    const env = stackEnv(stack);

    const restart = await cli(['restart', name, '--timeout', '30'], env);
    expect(restart.stderr).toBe('');
    expect(restart.stdout).toMatch(/no runner manages "py-no-runner": it gets the restart with its next heartbeat, up to 1 s from now/);
    expect(restart.stdout).toMatch(/restart "py-no-runner" succeeded in [\d.]+ s: the agent started again/);
    expect(restart.exitCode).toBe(0);
    const pid = agent.child.pid!;
    expect(agent.output()).toContain(`start 1 pid ${pid}`);
    expect(agent.output()).toContain(`start 2 pid ${pid}`);
    expect(await status(name)).toBe('running');

    const stop = await cli(['stop', name, '--timeout', '30'], env);
    expect(stop.stdout).toMatch(/stop "py-no-runner" succeeded in [\d.]+ s: the agent stopped/);
    expect(stop.exitCode).toBe(0);
    const ended = await agent.child;
    expect(ended.signal).toBe('SIGTERM');
    expect(await status(name)).toBe('stopped');
    expect(await commands(name)).toEqual([
      expect.objectContaining({ action: 'restart', status: 'succeeded', via_heartbeat: true }),
      expect.objectContaining({ action: 'stop', status: 'succeeded', via_heartbeat: true }),
    ]);

    const start = await cli(['start', name], env);
    expect(start.exitCode).not.toBe(0);
    expect(start.stderr).toContain(`no runner manages agent 'py-no-runner', so nothing can start it`);
    const again = await cli(['stop', name], env);
    expect(again.stdout).toContain('succeeded');
    expect(again.stdout).toContain('already stopped');
  }, 120_000);
});

describe('from the dashboard', () => {
  const dashboard = useServedDashboard(stack);

  it("offers Stop for an agent no runner manages, says how long it can take, and the agent's own handler stops it", async () => {
    const name = 'py-handler';
    const agent = await pythonAgent(name, { CONTROL_HANDLER: '1' });
    const page = await dashboard.browser.newPage({ viewport: { width: 1360, height: 860 } });
    await signIn(page, dashboard.url, stack.operator);
    const row = page.locator(`.rows [data-agent="${name}"]`);
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 20_000 }).toBe('running');
    const stop = row.getByRole('button', { name: `Stop ${name}` });
    expect(await stop.isDisabled()).toBe(false);
    expect(await stop.getAttribute('title')).toBe(
      'no runner manages this agent: it gets the stop with its next heartbeat, up to 1 s from now',
    );
    expect(await row.getByRole('button', { name: `Start ${name}` }).isDisabled()).toBe(true);
    await stop.click();
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 30_000 }).toBe('stopped');
    const ended = await agent.child;
    // the handler ended its main loop: a clean exit, not a signal
    expect(ended.exitCode).toBe(0);
    expect(agent.output()).toContain(`handler stop ${name}`);
    expect(agent.output()).toContain('main loop ended');
    expect(await commands(name)).toEqual([expect.objectContaining({ action: 'stop', status: 'succeeded', via_heartbeat: true })]);
  }, 90_000);
});

describe('a TypeScript agent no runner manages', () => {
  it("run()'s SIGTERM handling reports it stopped when an operator stops it", async () => {
    const name = 'ts-no-runner';
    const token = await createToken(stack.db.sql, 'agent', { agent: name });
    const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'tests/sdk/fixtures/node-agent.ts')], {
      cwd: REPO,
      reject: false,
      env: { AGENT_STATUS_URL: stack.url, AGENT_STATUS_TOKEN: token, AGENT_NAME: name, AGENT_STATUS_HEARTBEAT_INTERVAL: '1' },
    });
    started.push(child);
    await waitFor(`${name} to run`, async () => (await status(name)) === 'running', 20_000);
    const stop = await cli(['stop', name, '--timeout', '30'], stackEnv(stack));
    expect(stop.stdout).toMatch(/stop "ts-no-runner" succeeded/);
    expect((await child).signal).toBe('SIGTERM');
    expect(await status(name)).toBe('stopped');
  }, 90_000);

  it('onCommand handles a restart in place and a stop; the SDK then reports started or stopped', async () => {
    const name = 'ts-handler';
    const token = await createToken(stack.db.sql, 'agent', { agent: name });
    const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'tests/sdk/fixtures/node-control-agent.ts')], {
      cwd: REPO,
      reject: false,
      env: { AGENT_STATUS_URL: stack.url, AGENT_STATUS_TOKEN: token, AGENT_NAME: name, AGENT_STATUS_HEARTBEAT_INTERVAL: '1' },
    });
    started.push(child);
    await waitFor(`${name} to run`, async () => (await status(name)) === 'running', 20_000);
    const restart = await cli(['restart', name, '--timeout', '30'], stackEnv(stack));
    expect(restart.stdout).toMatch(/restart "ts-handler" succeeded/);
    const stop = await cli(['stop', name, '--timeout', '30'], stackEnv(stack));
    expect(stop.stdout).toMatch(/stop "ts-handler" succeeded/);
    const ended = await child;
    expect(ended.exitCode).toBe(0);
    expect(ended.stdout).toBe('reloaded\ndrained');
    expect(await status(name)).toBe('stopped');
  }, 90_000);
});
