// Issue 11 through the real CLI: `timeouts` sets an agent's heartbeat and activity timeouts as a
// recorded operator action, and `list` tells restarts, a silent runner, an agent's own error and a
// warning it recovered from.
import { describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { registerRunner, createToken } from '../helpers/agents.ts';
import { EXIT } from '../../runner/exit-codes.ts';
import { cli, stackEnv } from './helpers.ts';

const stack = useTestStack();

describe('the CLI tells the truth at the edges', { timeout: 120_000 }, () => {
  it('timeouts: sets both, recorded in the history, and gives them back with "default"', async () => {
    const token = await createToken(stack.db.sql, 'agent', { agent: 'Slow Agent' });
    await stack.db.sql`select public.agent_heartbeat(${token}, 'Slow Agent', p_heartbeat_interval_s => 10)`;
    const set = await cli(['timeouts', 'Slow Agent', '--heartbeat', '45s', '--activity', '10m'], stackEnv(stack));
    expect(set.stderr).toBe('');
    expect(set.exitCode).toBe(0);
    expect(set.stdout).toMatch(/^Slow Agent: stale after 45 s without a heartbeat \(operator\), warning after 600 s without activity/);
    const [event] = await stack.db.sql`
      select e.kind, e.source, e.actor from public.agent_events e join public.agent_status a on a.id = e.agent_id
      where a.agent_name = 'Slow Agent' and e.kind = 'timeouts_set'`;
    expect(event).toEqual({ kind: 'timeouts_set', source: 'operator', actor: 'operator operator@agent-status.test' });

    const back = await cli(['timeouts', 'Slow Agent', '--heartbeat', 'default', '--json'], stackEnv(stack));
    expect(JSON.parse(back.stdout)).toMatchObject({
      heartbeat_timeout_s: 25,
      heartbeat_timeout_source: 'interval',
      activity_timeout_s: 600,
    });

    expect((await cli(['timeouts', 'Slow Agent'], stackEnv(stack))).exitCode).toBe(EXIT.usage);
    expect((await cli(['timeouts', 'Slow Agent', '--heartbeat', 'soon'], stackEnv(stack))).exitCode).toBe(EXIT.usage);
    const tooShort = await cli(['timeouts', 'Slow Agent', '--heartbeat', '2s'], stackEnv(stack));
    expect(tooShort.exitCode).not.toBe(0);
    expect(tooShort.stderr).toContain('heartbeat timeout must be 5..86400 seconds');
    expect((await cli(['timeouts', 'Slow agent', '--heartbeat', '1m'], stackEnv(stack))).exitCode).toBe(EXIT.notFound);
  });

  it('list: restarts, a silent runner, and the warning an agent recovered from', async () => {
    const runner = await registerRunner(stack.db.sql, 'flaky-host', ['Looping Agent']);
    await stack.db.sql`select public.runner_heartbeat(${runner}, null, 5)`;
    const report = (event: string, details: Record<string, number> | null = null) =>
      stack.db.sql`select public.agent_report(${runner}, 'Looping Agent', ${event}, p_message => 'exited with code 1 after 2.0 s',
                     p_exit_code => ${event === 'crashed' ? 1 : null}, p_details => ${details === null ? null : stack.db.sql.json(details)})`;
    await report('started');
    await report('crashed', { restart_in_s: 8 });
    await report('started');

    const token = await createToken(stack.db.sql, 'agent', { agent: 'Recovered Agent' });
    await stack.db.sql`select public.agent_report(${token}, 'Recovered Agent', 'started')`;
    await stack.db.sql`select public.agent_report(${token}, 'Recovered Agent', 'warning', p_message => 'rate limited')`;
    await stack.db.sql`select public.agent_report(${token}, 'Recovered Agent', 'running')`;

    let list = await cli(['list'], stackEnv(stack));
    expect(list.stdout).toMatch(
      /Looping Agent\s+warning\s+-\s+up \d+ s\s+1 \(1 in 10 min\)\s+flaky-host\s+\d+ s ago\s+restart 1 in 10 min/,
    );
    expect(list.stdout).toMatch(/Recovered Agent\s+running\s+-\s+up \d+ s\s+-\s+-\s+\d+ s ago\s+\(warning \d+ s ago: rate limited\)/);

    // the runner falls silent: two of its 5 s intervals later its agents' rows say so
    await stack.db.sql`update public.runners set last_seen_at = now() - interval '12 seconds' where host = 'flaky-host'`;
    list = await cli(['list'], stackEnv(stack));
    expect(list.stdout).toMatch(
      /Looping Agent\s+warning\s+.*flaky-host \(runner silent 1\d s\)\s+\d+ s ago\s+its runner on flaky-host is silent/,
    );
  });
});
