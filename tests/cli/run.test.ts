// `agent-status run`: real programs wrapped by the real CLI, reporting through the real edge functions
// (Deno) into the database: a clean exit, a failure with exit code 3, and SIGTERM both ways (passed on
// by the wrapper as a stop, or sent to the program behind the wrapper's back).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { waitFor } from '../runner/helpers.ts';
import { EXIT } from '../../runner/exit-codes.ts';
import { CLI_FIXTURES, cli, stackEnv } from './helpers.ts';

const stack = useTestStack({ functions: true });

async function agentEnv(name: string) {
  const [{ token }] = await stack.db.sql`select token from public.create_api_token('agent', p_agent_name => ${name})`;
  return { AGENT_STATUS_URL: stack.url, AGENT_STATUS_TOKEN: token as string };
}

async function agent(name: string) {
  const [row] = await stack.db.sql`select * from public.agent_status where agent_name = ${name}`;
  return row;
}

async function kinds(name: string) {
  const rows = await stack.db.sql`
    select e.kind from public.agent_events e join public.agent_status a on a.id = e.agent_id
    where a.agent_name = ${name} order by e.id`;
  return rows.map((r) => r.kind);
}

describe('agent-status run', { timeout: 120_000 }, () => {
  it('marks a program that exits 0 started, then stopped, and exits 0', async () => {
    const name = 'Clean Job';
    const result = await cli(['run', '--name', name, '--', join(CLI_FIXTURES, 'works-then-exits-0.sh')], await agentEnv(name));
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('working\ndone');
    expect(await agent(name)).toMatchObject({ status: 'stopped', health: 0, pid: null });
    expect(await kinds(name)).toEqual(['started', 'stopped']);
  });

  it('reports a program that exits 3 as an error with the code and its last stderr lines, and exits 3', async () => {
    const name = 'Failing Job';
    const result = await cli(['run', '--name', name, '--', join(CLI_FIXTURES, 'fails-with-3.sh')], await agentEnv(name));
    expect(result.exitCode).toBe(3);
    // its standard error still reaches ours
    expect(result.stderr).toContain('Traceback: queue.example is unreachable');
    const row = await agent(name);
    expect(row.status).toBe('error');
    expect(row.last_error).toBe('exited with code 3; last stderr lines:\nconnecting to the queue\nTraceback: queue.example is unreachable');
    expect(await kinds(name)).toEqual(['started', 'error', 'stopped']);
    // the exit code is recorded as the runner records it; no health and no uptime once it ended
    const [live] = await stack.db.sql`select * from public.agent_status_live where agent_name = ${name}`;
    expect(live).toMatchObject({ exit_code: 3, health: 0, uptime_s: null });
    expect(live.down_s).toBeGreaterThanOrEqual(0);
    // and `list` shows the agent's own error text, down since it ended
    const list = await cli(['list'], stackEnv(stack));
    expect(list.stdout).toMatch(
      /Failing Job\s+error\s+-\s+down \d+ s\s+-\s+-\s+\d+ s ago\s+exited with code 3; last stderr lines: connecting.*/,
    );
  });

  it('heartbeats while the program lives; SIGTERM to the wrapper is passed on and recorded as a stop (exit 143)', async () => {
    const name = 'Long Agent';
    const child = cli(
      ['run', '--name', name, '--heartbeat', '1', '--', join(CLI_FIXTURES, 'runs-until-signalled.sh')],
      await agentEnv(name),
    );
    const pid = await waitFor('the wrapped program to start', async () => (await agent(name))?.pid, 20_000, 100);
    expect(pid).not.toBe(child.pid);
    const first = (await agent(name)).last_heartbeat as Date;
    await waitFor('a heartbeat', async () => (await agent(name)).last_heartbeat > first, 10_000, 100);
    expect((await agent(name)).status).toBe('running');

    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(128 + 15);
    expect(await agent(name)).toMatchObject({ status: 'stopped', pid: null });
    expect(await kinds(name)).toEqual(['started', 'stopped']);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('reports a program killed by SIGTERM from elsewhere as an error', async () => {
    const name = 'Killed Agent';
    const child = cli(['run', '--name', name, '--', join(CLI_FIXTURES, 'runs-until-signalled.sh')], await agentEnv(name));
    const pid = await waitFor('the wrapped program to start', async () => (await agent(name))?.pid, 20_000, 100);
    process.kill(pid, 'SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(143);
    const row = await agent(name);
    expect(row.status).toBe('error');
    expect(row.last_error).toBe('killed by SIGTERM');
  });

  it('refuses to run without a token (2) and reports a program that cannot start (127)', async () => {
    const noToken = await cli(['run', '--name', 'X', '--', 'true'], { AGENT_STATUS_URL: stack.url });
    expect(noToken.exitCode).toBe(EXIT.usage);
    expect(noToken.stderr).toContain('run needs the token of agent "X"');
    const noName = await cli(['run', '--', 'true'], await agentEnv('Y'));
    expect(noName.exitCode).toBe(EXIT.usage);
    expect(noName.stderr).toContain("required option '--name <agent>' not specified");

    const name = 'Missing Program';
    const missing = await cli(['run', '--name', name, '--', '/no/such/program'], await agentEnv(name));
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toContain('could not start "/no/such/program"');
    expect((await agent(name)).status).toBe('error');
  });
});
