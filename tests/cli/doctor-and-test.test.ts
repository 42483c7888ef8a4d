// `agent-status doctor` and `agent-status test`: the real CLI against a real stack with the edge
// functions on Deno, agents started by a real Runner or by the CLI itself (wrapped in `agent-status run`).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { fixtureAgent, makeHost } from '../runner/host.ts';
import { setAgentState } from '../helpers/agents.ts';
import { EXIT } from '../../runner/exit-codes.ts';
import { BIN, CLI_FIXTURES, cli, stackEnv } from './helpers.ts';

const stack = useTestStack({ functions: true });

async function agentToken(name: string): Promise<string> {
  const [{ token }] = await stack.db.sql`select token from public.create_api_token('agent', p_agent_name => ${name})`;
  return token;
}

/** `node agent-status.js run --name <name> --heartbeat 1 -- <fixture>`, as a test command. */
function wrapped(name: string, fixture: string, heartbeat = 1): string[] {
  return ['--', 'node', BIN, 'run', '--name', name, '--heartbeat', String(heartbeat), '--', join(CLI_FIXTURES, fixture)];
}

function checks(stdout: string): Record<string, string> {
  return Object.fromEntries((JSON.parse(stdout) as { check: string; result: string }[]).map((c) => [c.check, c.result]));
}

describe('doctor', { timeout: 120_000 }, () => {
  it('checks the API, operator access, the functions, the sweep and all agents', async () => {
    const json = await cli(['doctor', '--json'], stackEnv(stack));
    expect(json.stderr).toBe('');
    // pg_cron runs only in cron.database_name, not in this file's cloned database (doctor-pg-cron.test.ts has it)
    expect(checks(json.stdout)).toEqual({
      'API reachable': 'pass',
      'operator access': 'pass',
      'edge functions deployed': 'pass',
      'pg_cron sweep': 'warn',
      agents: 'warn',
    });
    expect(json.exitCode).toBe(0);

    const human = await cli(['doctor'], stackEnv(stack));
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toMatch(/^pass {2}API reachable +http:\/\/127\.0\.0\.1:\d+ answered in \d+ ms$/m);
    expect(human.stdout).toMatch(/^pass {2}operator access +reading as operator@agent-status\.test$/m);
    expect(human.stdout).toMatch(
      /^warn {2}pg_cron sweep +pg_cron is not installed in this database: something else must call public\.agent_status_sweep\(\) every minute/m,
    );
    expect(human.stdout).toMatch(/^warn {2}agents +no agents yet$/m);
  });

  it('checks one agent: exact name, status, heartbeats (measured with --watch), its runner', async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever], { heartbeat_interval: '1s' });
    await host.start();
    expect((await cli(['start', forever.name], stackEnv(stack))).exitCode).toBe(0);

    const result = await cli(['doctor', forever.name, '--watch', '4'], stackEnv(stack));
    expect(result.stdout).toMatch(new RegExp(`^pass  name matches exactly +"${forever.name}"$`, 'm'));
    expect(result.stdout).toMatch(/^pass {2}status +running, health not reported/m);
    expect(result.stdout).toMatch(/^pass {2}heartbeats arriving +\d heartbeat\(s\) in 4 s, about every \d\.\d s \(timeout 120 s\)$/m);
    expect(result.stdout).toMatch(new RegExp(`^pass  runner manages it +the runner on ${host.host} is online$`, 'm'));

    const misspelt = await cli(['doctor', forever.name.toUpperCase()], stackEnv(stack));
    expect(misspelt.exitCode).toBe(EXIT.notFound);
    expect(misspelt.stdout).toContain(`fix: Did you mean "${forever.name}"?`);
    expect((await cli(['stop', forever.name], stackEnv(stack))).exitCode).toBe(0);
  });

  it('fails an agent that never sent a heartbeat and one whose runner is stopped', async () => {
    await agentToken('Never Heard From');
    const never = await cli(['doctor', 'Never Heard From', '--json'], stackEnv(stack));
    expect(never.exitCode).toBe(EXIT.failed);
    expect(checks(never.stdout)).toMatchObject({ 'heartbeats arriving': 'fail', 'runner manages it': 'warn' });
    // no runner: the advice is not the restart the runner check says will be refused
    await setAgentState(stack.db.sql, 'Stale Loner', 'stale');
    const loner = await cli(['doctor', 'Stale Loner'], stackEnv(stack));
    expect(loner.stdout).toMatch(/fix: The process may be hung or dead: check it on its host, then start it again on its host \(no runner/);
    expect(loner.stdout).not.toMatch(/then restart it/);

    const forever = fixtureAgent('forever.sh');
    const runner = await (await makeHost(stack, [forever])).start();
    await runner.shutdown({ stopAgents: true });
    const stopped = await cli(['doctor', forever.name], stackEnv(stack));
    expect(stopped.exitCode).toBe(EXIT.failed);
    expect(stopped.stdout).toMatch(/^FAIL {2}runner manages it +the runner on host-\w+ is stopped \(said goodbye \d+ s ago\); last seen /m);
  });

  it('exits 3 when the API is down and 4 when it may not read as an operator', async () => {
    const notOperator = await cli(['doctor'], stackEnv(stack, 'nobody'));
    expect(notOperator.exitCode).toBe(EXIT.auth);
    expect(notOperator.stdout).toMatch(/^pass {2}API reachable/m);
    expect(notOperator.stdout).toMatch(/^FAIL {2}operator access +only operators may do this/m);
    await stack.gateway.stop();
    try {
      const down = await cli(['doctor'], stackEnv(stack));
      expect(down.exitCode).toBe(EXIT.unreachable);
      expect(down.stdout).toMatch(/^FAIL {2}API reachable +cannot reach the API at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/m);
      expect(down.stdout).toContain('fix: Is the stack running?');
    } finally {
      await stack.gateway.start();
    }
  });
});

describe('test', { timeout: 120_000 }, () => {
  it('starts an agent through its runner, prints the timeline, stops it and passes', async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever], { heartbeat_interval: '1s' });
    await host.start();
    const result = await cli(['test', forever.name, '--duration', '4'], stackEnv(stack));
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^\+ +0\.\d s +start requested +command \d+ for the runner on host-/m);
    expect(result.stdout).toMatch(/^\+ +\d+\.\d s +start succeeded/m);
    expect(result.stdout).toMatch(/^\+ +\d+\.\d s +started +stopped -> running/m);
    expect(result.stdout).toMatch(/^\+ +\d+\.\d s +heartbeat +running, health 100/m);
    expect(result.stdout).toMatch(/^\+ +\d+\.\d s +stop succeeded/m);
    expect(result.stdout).toMatch(
      new RegExp(
        // the figures depend on the machine's pace (timing is the bench's job); the verdict and its shape do not
        `^PASS  ${forever.name}: ran [45] s with \\d heartbeat\\(s\\), about every \\d\\.\\d s, longest silence \\d s \\(timeout 120 s\\); stopped cleanly$`,
        'm',
      ),
    );

    // an agent that was already running is watched and left running
    expect((await cli(['start', forever.name], stackEnv(stack))).exitCode).toBe(0);
    const watched = await cli(['test', forever.name, '--duration', '3'], stackEnv(stack));
    expect(watched.stdout).toMatch(/start succeeded +already running \(pid \d+\)/);
    expect(watched.stdout).toMatch(/; left running$/m);
    expect(watched.exitCode).toBe(0);
    expect((await stack.db.sql`select status from public.agent_status where agent_name = ${forever.name}`)[0].status).toBe('running');
    expect((await cli(['stop', forever.name], stackEnv(stack))).exitCode).toBe(0);
  });

  it('runs a command directly and passes; a failing program fails with the reason', async () => {
    const name = 'Direct Agent';
    const env = { ...stackEnv(stack), AGENT_STATUS_TOKEN: await agentToken(name) };
    // long enough for the wrapper (node + tsx) to start on a busy machine and send a few heartbeats
    const running = cli(['test', name, '--duration', '8', ...wrapped(name, 'runs-until-signalled.sh')], env);
    let verdictAt = Infinity;
    running.stdout!.on('data', (chunk: Buffer) => {
      if (/^(PASS|FAIL) /m.test(chunk.toString())) verdictAt = Math.min(verdictAt, performance.now());
    });
    const good = await running;
    const exitedAfterVerdict = performance.now() - verdictAt;
    // exits once the verdict is out: the stop's 10 s grace timer no longer holds it open for ~8 s more
    // (a liveness bound)
    expect(exitedAfterVerdict).toBeLessThan(4000);
    expect(good.stdout).toMatch(/process started +pid \d+: node /);
    expect(good.stdout).toMatch(/stop requested +SIGTERM to the process/);
    expect(good.stdout).toMatch(/^PASS {2}Direct Agent: ran (8|9) s with \d+ heartbeat\(s\), about every \d\.\d s, .*; stopped cleanly$/m);
    expect(good.exitCode).toBe(0);

    const bad = await cli(['test', name, '--duration', '10', ...wrapped(name, 'fails-with-3.sh')], env);
    expect(bad.exitCode).toBe(EXIT.failed);
    expect(bad.stdout).toMatch(/^\+ +\d+\.\d s +error +running -> error +exited with code 3; last stderr lines:/m);
    expect(bad.stdout).toMatch(
      /^FAIL {2}Direct Agent: .*it reported an error: exited with code 3; .*its process ended by itself after \d+\.\d s \(exit code 3\)$/m,
    );
  });

  it('fails an agent that stops heartbeating with "no heartbeat for N s"', async () => {
    const name = 'Quiet Agent';
    const env = { ...stackEnv(stack), AGENT_STATUS_TOKEN: await agentToken(name) };
    await stack.db.sql`update public.agent_status set heartbeat_timeout_s = 5 where agent_name = ${name}`;
    const quiet = await cli(['test', name, '--duration', '16', ...wrapped(name, 'runs-until-signalled.sh', 3600)], env);
    expect(quiet.exitCode).toBe(EXIT.failed);
    expect(quiet.stdout).toMatch(/^\+ +\d+\.\d s +stale +no heartbeat for \d+ s/m);
    expect(quiet.stdout).toMatch(
      /^FAIL {2}Quiet Agent: no heartbeat for \d+ s; it goes stale after 5 s; it went stale: no heartbeat for \d+ s$/m,
    );
  });

  it('refuses an unknown agent (5) and an unmanaged stopped agent without a command (2)', async () => {
    const unknown = await cli(['test', 'quiet agent'], stackEnv(stack));
    expect(unknown.exitCode).toBe(EXIT.notFound);
    expect(unknown.stderr).toContain('Did you mean "Quiet Agent"?');
    const cannot = await cli(['test', 'Quiet Agent', '--duration', '1'], stackEnv(stack));
    expect(cannot.exitCode).toBe(EXIT.usage);
    expect(cannot.stderr).toContain('Give the command that starts it');
  });
});
