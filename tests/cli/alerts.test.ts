// `agent-status alerts ...` as a child process against a real stack whose own timer runs the real
// dispatcher (as npm start does), with a receiver on 127.0.0.1 as the channel's endpoint.
import { describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { setAgentState } from '../helpers/agents.ts';
import { useReceiver } from '../alerts/receiver.ts';
import { EXIT } from '../../runner/exit-codes.ts';
import { cli, stackEnv } from './helpers.ts';

const stack = useTestStack({ functions: true, alerts: true, alertIntervalMs: 1000 });
const receiver = useReceiver();

describe('agent-status alerts', { timeout: 120_000 }, () => {
  it('adds a channel with its secret from the environment and lists it masked', async () => {
    const add = await cli(
      ['alerts', 'channel', 'add', 'ops-hook', '--kind', 'webhook', '--endpoint', `${receiver.url}/hook`, '--secret-env', 'HOOK_SECRET'],
      { ...stackEnv(stack), HOOK_SECRET: 'whsec_cli_0123456789' },
    );
    expect(add.stderr).toBe('');
    expect(add.exitCode).toBe(0);
    expect(add.stdout).toContain('with secret ••••6789');
    const listed = await cli(['alerts', 'channel', 'list', '--json'], stackEnv(stack));
    expect(listed.exitCode).toBe(0);
    expect(listed.stdout).not.toContain('whsec_cli');
    expect(JSON.parse(listed.stdout)[0]).toMatchObject({ name: 'ops-hook', secret: '••••6789', kind: 'webhook' });
  });

  it("sends a test notice through the stack's dispatcher and reports the result", async () => {
    const test = await cli(['alerts', 'channel', 'test', 'ops-hook', '--wait', '60'], stackEnv(stack));
    expect(test.stderr).toBe('');
    expect(test.stdout).toMatch(/^Delivered test notice \d+ to ops-hook \(HTTP 200\)/);
    expect(receiver.on('/hook').at(-1)!.json.kind).toBe('test');
    // the stack's timer holds its own key: a project's database (DATABASE_URL) keeps its dispatch settings
    const [{ n }] = await stack.db.sql`select count(*)::int as n from agent_private.alert_dispatch_target`;
    expect(n).toBe(0);
  });

  it('a flip reaches the receiver without anyone calling the dispatcher', async () => {
    await cli(['alerts', 'rule', 'ops-hook', '--agents', 'cli-*', '--grace', '0'], stackEnv(stack));
    await setAgentState(stack.db.sql, 'cli-agent', 'running');
    await stack.db.sql`select agent_private.apply_event(id, 'error', 'agent', 'test', p_message => 'boom')
                       from public.agent_status where agent_name = 'cli-agent'`;
    for (let i = 0; i < 300 && !receiver.on('/hook').some((r) => r.json.kind === 'down'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(receiver.on('/hook').find((r) => r.json.kind === 'down')!.json).toMatchObject({ agent: 'cli-agent', text: 'boom' });
    const log = await cli(['alerts', 'log', '--json'], stackEnv(stack));
    expect(JSON.parse(log.stdout).map((d: { kind: string; status: string }) => `${d.kind}:${d.status}`)).toEqual(
      expect.arrayContaining(['down:delivered', 'test:delivered']),
    );
  });

  it('snoozes and resumes an agent, and refuses a snooze without a target', async () => {
    const snooze = await cli(['alerts', 'snooze', '--agent', 'cli-agent', '--for', '2h', '--reason', 'disk swap'], stackEnv(stack));
    expect(snooze.exitCode).toBe(0);
    expect(snooze.stdout).toMatch(/^Alerts paused for cli-agent until \d{4}-\d\d-\d\d/);
    const [paused] = await stack.db.sql`select reason from public.agent_alerts_paused where agent_name = 'cli-agent'`;
    expect(paused.reason).toBe('disk swap');
    const listed = await cli(['list'], stackEnv(stack));
    expect(listed.stdout).toMatch(/cli-agent .*\(alerts paused until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)/);
    const resume = await cli(['alerts', 'resume', '--agent', 'cli-agent'], stackEnv(stack));
    expect(resume.stdout).toBe('Alerts resumed for cli-agent.');
    const bad = await cli(['alerts', 'snooze', '--for', '2h'], stackEnv(stack));
    expect(bad.exitCode).toBe(EXIT.usage);
    expect(bad.stderr).toContain('name exactly one of --agent <name> or --host <host>');
  });

  it('removing an unknown channel says so and exits "not found"', async () => {
    const removed = await cli(['alerts', 'channel', 'remove', 'nope'], stackEnv(stack));
    expect(removed.exitCode).toBe(EXIT.notFound);
    expect(removed.stderr).toContain("no alert channel named 'nope'");
    expect(removed.stderr).toContain('agent-status alerts channel list');
  });
});
