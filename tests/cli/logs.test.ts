// `agent-status logs`: the real CLI as a child process asking a real runner for an agent's last lines.
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../runner/exit-codes.ts';
import { newLines } from '../../runner/cli/commands/logs.ts';
import { useTestStack } from '../helpers/stack.ts';
import { fixtureAgent, makeHost } from '../runner/host.ts';
import { waitFor } from '../runner/helpers.ts';
import { cli, stackEnv } from './helpers.ts';

const stack = useTestStack();

describe('agent-status logs', { timeout: 60_000 }, () => {
  it('prints the last N lines of stdout to stdout and of stderr to stderr', async () => {
    const chatty = fixtureAgent('chatty.sh', { autostart: true });
    await (await makeHost(stack, [chatty])).start();
    const result = await waitFor(
      'ten lines written',
      async () => {
        const run = await cli(['logs', chatty.name, '-n', '4'], stackEnv(stack));
        return run.stderr.split('\n').filter(Boolean).length >= 2 ? run : undefined;
      },
      20_000,
      500,
    );
    expect(result.exitCode).toBe(0);
    const out = result.stdout.split('\n');
    expect(out).toHaveLength(4);
    for (const line of out) expect(line).toMatch(/^chatty: line \d+$/);
    for (const line of result.stderr.split('\n')) expect(line).toMatch(/^chatty: warning at line \d+$/);
  });

  it('follows: keeps printing only the new lines until interrupted', async () => {
    const chatty = fixtureAgent('chatty.sh', { autostart: true });
    await (await makeHost(stack, [chatty])).start();
    const follow = cli(['logs', chatty.name, '-n', '3', '--follow'], stackEnv(stack));
    let output = '';
    follow.stdout!.on('data', (chunk) => (output += chunk));
    await waitFor('lines from three answers', () => output.split('\n').filter(Boolean).length >= 12, 20_000, 100);
    follow.kill('SIGINT');
    const { exitCode } = await follow;
    expect(exitCode).toBe(0);
    const numbers = output
      .split('\n')
      .filter(Boolean)
      .map((line) => Number(line.split(' ').at(-1)));
    // every line once, in order: no repeats across the answers
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(new Set(numbers).size).toBe(numbers.length);
  });

  it('says so when the agent printed nothing, on stderr, and exits 0', async () => {
    const quiet = fixtureAgent('exits-after.sh', { autostart: true, env: { RUN_SECONDS: '3600' } });
    await (await makeHost(stack, [quiet])).start();
    await waitFor('the agent running', async () => {
      const [row] = await stack.db.sql`select status from public.agent_status where agent_name = ${quiet.name}`;
      return row?.status === 'running';
    });
    const result = await cli(['logs', quiet.name], stackEnv(stack));
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`${quiet.name} printed nothing: its runner captured no stdout or stderr lines.`);
  });

  it('refuses an agent no runner manages (6), an unknown one (5) and a bad count (2)', async () => {
    await stack.db.sql`select public.create_api_token('agent', p_agent_name => 'Loner')`;
    const loner = await cli(['logs', 'Loner'], stackEnv(stack));
    expect(loner.exitCode).toBe(EXIT.conflict);
    expect(loner.stderr).toMatch(/no runner manages agent 'Loner'/);
    const unknown = await cli(['logs', 'loner'], stackEnv(stack));
    expect(unknown.exitCode).toBe(EXIT.notFound);
    expect(unknown.stderr).toMatch(/Did you mean "Loner"/);
    expect((await cli(['logs', 'Loner', '-n', '501'], stackEnv(stack))).exitCode).toBe(EXIT.usage);
  });

  it('newLines keeps only what follows the overlap', () => {
    expect(newLines(['a', 'b', 'c'], ['b', 'c', 'd', 'e'])).toEqual(['d', 'e']);
    expect(newLines(['a', 'b'], ['x', 'y'])).toEqual(['x', 'y']);
    expect(newLines([], ['x'])).toEqual(['x']);
  });
});
