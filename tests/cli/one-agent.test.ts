// The commands users of supervisorctl and PM2 reach for: `status <agent>` (alias `show`), `history
// <agent>`, `reset <agent>` (pm2 reset) and `stop-all`, the real CLI against a real stack with a real
// runner supervising a crashing agent.
import { describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { fixtureAgent, makeHost } from '../runner/host.ts';
import { waitFor } from '../runner/helpers.ts';
import { EXIT } from '../../runner/exit-codes.ts';
import { registerRunner, setAgentState } from '../helpers/agents.ts';
import { cli, stackEnv } from './helpers.ts';

const stack = useTestStack();

describe('one agent', { timeout: 120_000 }, () => {
  it('status and show print one agent with its restarts, timeouts and history; history pages it; reset forgets the restarts', async () => {
    const crashing = fixtureAgent('crashes.sh', { name: 'Crashy Agent', autostart: true, restart: 'always' });
    const steady = fixtureAgent('forever.sh', { name: 'Steady Agent', autostart: true });
    const host = await makeHost(stack, [crashing, steady]);
    const console: string[] = [];
    await host.start((line) => console.push(line));
    await waitFor(
      'a crash loop of the crashing agent (3 crashes in 10 min, two restarts)',
      async () => {
        const [row] = await stack.db
          .sql`select restarts_total, crash_looping from public.agent_status_live where agent_name = 'Crashy Agent'`;
        return (row?.restarts_total ?? 0) >= 2 && row.crash_looping === true;
      },
      60_000,
    );
    // the runner's console tells every crash, the first one (restarted at once) too
    expect(console.find((line) => line.startsWith('Crashy Agent: '))).toMatch(
      /^Crashy Agent: exited with code 2 after [\d.]+ m?s; restarting now \(restart: always\)$/,
    );
    const status = await cli(['status', 'Crashy Agent'], stackEnv(stack));
    expect(status.stderr).toBe('');
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toMatch(/^Crashy Agent\n/);
    expect(status.stdout).toMatch(/^ {2}restarts +[2-9]\d* after crashes, \d+ in the last 10 min/m);
    expect(status.stdout).toMatch(/^ {2}heartbeat +.*stale after \d+ s \((config|interval|default|operator)\)/m);
    expect(status.stdout).toMatch(new RegExp(`^ {2}host +${host.host}$`, 'm'));
    expect(status.stdout).toMatch(/^history \(newest first\):\n {2}\d{4}-/m);
    // an activity text is shown with its age (after a restart it may be the old process's last words)
    await stack.db.sql`update public.agent_status set last_activity = 'draining the queue', last_heartbeat = now() - interval '5 s',
                       last_activity_at = now() - interval '47 s' where agent_name = 'Steady Agent'`;
    const steadyStatus = await cli(['status', 'Steady Agent'], stackEnv(stack));
    // a shell program under the runner never says its health: not reported, not "0 / 100"
    expect(steadyStatus.stdout).toMatch(/^ {2}health +not reported: /m);
    expect(steadyStatus.stdout).toMatch(/^ {2}activity +draining the queue \((4[7-9]|[5-9]\d|1[01]\d) s ago\); warning after /m);
    const show = await cli(['show', 'Crashy Agent', '--json'], stackEnv(stack));
    expect(show.exitCode).toBe(0);
    expect(JSON.parse(show.stdout).agent.agent_name).toBe('Crashy Agent');

    const history = await cli(['history', 'Crashy Agent', '--limit', '5'], stackEnv(stack));
    expect(history.exitCode).toBe(0);
    const lines = history.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(5);
    expect(history.stdout).toMatch(/crash|exit/);

    // the reset ends the crash loop too (issue 19): it cleared the restarts and left the crashes, so the
    // badge and `list` still said "crash loop" for up to 10 min after the operator declared it over
    const reset = await cli(['reset', 'Crashy Agent'], stackEnv(stack));
    expect(reset.stderr).toBe('');
    expect(reset.stdout).toMatch(
      /^Reset the restart count of "Crashy Agent" \(was \d+\); its crash loop is over until it crashes 3 more times in 10 min\.$/m,
    );
    const [event] = await stack.db.sql`
      select e.kind, e.source, e.actor, e.message, e.details from public.agent_events e join public.agent_status a on a.id = e.agent_id
      where a.agent_name = 'Crashy Agent' and e.kind = 'restarts_reset'`;
    expect(event).toMatchObject({ kind: 'restarts_reset', source: 'operator', actor: `operator ${stack.operator.email}` });
    expect(event.message).toMatch(/^restart count reset by .* \(was \d+\); crash loop ended \(\d+ crashes in 10 min\)$/);
    expect(event.details).toMatchObject({ crash_loop_ended: true });
    // the runner goes on restarting it with backoff (seconds between crashes by now): one crash may
    // land before this read, never the three a loop needs
    const [after] = await stack.db.sql`
      select restarts_total, restarts_10m, crash_looping, crashes_10m from public.agent_status_live where agent_name = 'Crashy Agent'`;
    expect(after.crash_looping).toBe(false);
    expect(after.crashes_10m).toBeLessThanOrEqual(1);
    expect(after.restarts_total).toBeLessThanOrEqual(1);

    const unknown = await cli(['status', 'crashy agent'], stackEnv(stack));
    expect(unknown.exitCode).toBe(EXIT.notFound);
    expect(unknown.stderr).toContain('Did you mean "Crashy Agent"?');
    expect((await cli(['reset', 'Nobody'], stackEnv(stack))).exitCode).toBe(EXIT.notFound);

    // stop-all stops every agent a runner manages, and waits for the results
    const stopAll = await cli(['stop-all', '--host', host.host], stackEnv(stack));
    expect(stopAll.stdout).toMatch(/✓ stop "Steady Agent" succeeded/);
    expect(stopAll.exitCode).toBe(0);
    const [steadyRow] = await stack.db.sql`select status from public.agent_status where agent_name = 'Steady Agent'`;
    expect(steadyRow.status).toBe('stopped');
  });

  it("status says when the agent's alerts are paused, by its own pause or its host's", async () => {
    await registerRunner(stack.db.sql, 'paused-host', ['Quiet Agent']);
    await setAgentState(stack.db.sql, 'Quiet Agent', 'running');
    const alertsLine = async () => {
      const status = await cli(['status', 'Quiet Agent'], stackEnv(stack));
      expect(status.exitCode, status.stderr).toBe(0);
      return status.stdout.split('\n').find((line) => line.startsWith('  alerts '));
    };
    expect(await alertsLine()).toMatch(/^ {2}alerts +on$/);

    await stack.db.sql`select public.alert_pause('Quiet Agent', null, '2099-01-02 03:04:05+00', 'migrating the database')`;
    expect(await alertsLine()).toMatch(/^ {2}alerts +paused until 2099-01-02.*03:04:05.* \(migrating the database\)$/);

    await stack.db.sql`select public.alert_resume('Quiet Agent')`;
    await stack.db.sql`select public.alert_pause(null, 'paused-host')`;
    expect(await alertsLine()).toMatch(/^ {2}alerts +paused for its host paused-host until resumed$/);
  });
});
