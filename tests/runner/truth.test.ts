// Issue 11 from the user's side, with a real runner and real processes: a program that dies a few
// seconds after each start backs off and never reads running; a restarted agent that stays up is
// running again; a SIGKILLed runner reads silent and its agents say so; a crash is the runner's own
// report, not the deadline's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { tempDir, waitFor } from './helpers.ts';
import { enqueue, events, finished, fixtureAgent, makeHost } from './host.ts';

const stack = useTestStack();

async function live(name: string) {
  const [row] = await stack.db.sql`select * from public.agent_status_live where agent_name = ${name}`;
  return row;
}

describe('truth at the edges, through the runner', () => {
  it('a program that dies after each start backs off, counts restarts, never reads running, and keeps history bounded', async () => {
    const times = join(tempDir(), 'times');
    // runs 0.4 s (past min_uptime, so not a "failed start" that the runner would give up on)
    const looping = fixtureAgent('exits-after.sh', {
      restart: 'on-failure',
      min_uptime: '200ms',
      env: { RUN_SECONDS: '0.4', EXIT_CODE: '1', TIMES: times },
      backoff: { initial: '300ms', max: '1s', reset_after: '20s' },
    });
    const host = await makeHost(stack, [looping]);
    await host.start();
    const { sql } = stack.db;
    expect(await finished(sql, await enqueue(sql, 'start', looping.name))).toMatchObject({ status: 'succeeded' });

    // after the first crash, sampled until the fifth restart: error while waiting, warning while it runs
    const seen = new Set<string>();
    await waitFor(
      'five restarts',
      async () => {
        const row = await live(looping.name);
        if (row.restarts_total >= 1) seen.add(row.status);
        return row.restarts_total >= 5;
      },
      30_000,
      20,
    );
    expect([...seen].sort()).toEqual(['error', 'warning']);

    // the waits between an exit and the next start: none after the first crash, then 0.3, 0.6, 1 s (capped)
    const lines = readFileSync(times, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    const gaps: number[] = [];
    for (let i = 1; i + 1 < lines.length; i += 2) {
      if (lines[i][0] === 'exit' && lines[i + 1][0] === 'start') gaps.push(Number(lines[i + 1][1]) - Number(lines[i][1]));
    }
    expect(gaps.length).toBeGreaterThanOrEqual(4);
    expect(gaps[1]).toBeGreaterThanOrEqual(300);
    expect(gaps[2]).toBeGreaterThanOrEqual(600);
    expect(gaps[3]).toBeGreaterThanOrEqual(1000);

    const row = await waitFor('a crash with its backoff', async () => {
      const r = await live(looping.name);
      return r.status === 'error' && r.next_restart_at ? r : undefined;
    });
    expect(row.status_reason).toMatch(/^exited with code 1 after 0\.\d s; restarting in 1 s \(restart \d+ in 10 min\)$/);
    expect(row).toMatchObject({ crash_looping: true, health: 0 });
    expect(row.restarts_10m).toBeGreaterThanOrEqual(5);
    expect(row.errors_1h).toBeGreaterThanOrEqual(6);

    // started, crashed, started, crashed, started, then one crash_loop row (the third crash) counting the rest
    const kinds = (await events(sql, looping.name)).map((e) => e.kind).filter((k) => k === 'started' || k === 'crashed');
    expect(kinds).toEqual(['started', 'crashed', 'started', 'crashed', 'started', 'crashed']);
    const loop = (await events(sql, looping.name)).filter((e) => e.kind === 'crashed')[2];
    expect(loop.details.crash_loop).toBe(true);
    expect(loop.details.repeats).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('an agent restarted after a crash reads warning until it has stayed up reset_after, then running', async () => {
    const steady = fixtureAgent('forever.sh', { restart: 'always', backoff: { reset_after: '2s' } });
    const host = await makeHost(stack, [steady]);
    await host.start();
    const { sql } = stack.db;
    await finished(sql, await enqueue(sql, 'start', steady.name));
    const first = await live(steady.name);
    expect(first.status).toBe('running');
    process.kill(first.pid, 'SIGKILL');
    const restarted = await waitFor('the restart', async () => {
      const r = await live(steady.name);
      return r.pid && r.pid !== first.pid ? r : undefined;
    });
    // one crash is not a loop (issue 19: every single crash showed the badge for its stable period)
    expect(restarted).toMatchObject({ status: 'warning', restarts_total: 1, crashes_10m: 1, crash_looping: false });
    const stable = await waitFor('stable', async () => {
      const r = await live(steady.name);
      return r.status === 'running' ? r : undefined;
    });
    expect(stable).toMatchObject({ crash_looping: false, restarts_total: 1, health: 100 });
    expect((await events(sql, steady.name)).map((e) => e.kind)).toContain('stable');
  }, 30_000);

  // How fast is measured by `BENCH=edges npm run bench` (0.7 s); here, that it is the runner's own
  // report of the exit, not the heartbeat deadline minutes later.
  it('a crash is reported by the runner when the process dies, not found later by the deadline', async () => {
    const victim = fixtureAgent('forever.sh', { restart: 'never' });
    const host = await makeHost(stack, [victim]);
    await host.start();
    const { sql } = stack.db;
    await finished(sql, await enqueue(sql, 'start', victim.name));
    const { pid } = await live(victim.name);
    process.kill(pid, 'SIGKILL');
    const crashed = await waitFor('the crash in the database', async () => {
      const r = await live(victim.name);
      return r.status === 'error' ? r : undefined;
    });
    expect(crashed).toMatchObject({ exit_signal: 'SIGKILL', pid: null, uptime_s: null, status_source: 'runner' });
    expect(crashed.status_reason).toMatch(/^killed by SIGKILL after /);
    expect(crashed.stale_at).toBeNull();
  }, 30_000);

  it('a SIGKILLed runner reads silent within two of its heartbeat intervals, and its agents say so', async () => {
    const orphan = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [orphan], { heartbeat_interval: '1s' });
    const runner = await host.spawn();
    const { sql } = stack.db;
    await finished(sql, await enqueue(sql, 'start', orphan.name));
    await waitFor('the runner to declare its interval', async () => (await live(orphan.name)).runner_heartbeat_interval_s === 1);
    expect(await live(orphan.name)).toMatchObject({ status: 'running', runner_status: 'online', runner_online: true });
    runner.process.kill('SIGKILL');
    const silent = await waitFor(
      'the runner to read silent',
      async () => {
        const r = await live(orphan.name);
        return r.runner_status === 'silent' ? r : undefined;
      },
      20_000,
    );
    expect(silent).toMatchObject({ status: 'running', runner_online: false });
    expect(silent.status_reason).toMatch(/^its runner on .* is silent \(no word for \d+ s\)$/);
    const [r] = await sql`select * from public.runner_status_live where host = ${host.host}`;
    expect(r).toMatchObject({ status: 'silent', silent_after_s: 2 });
  }, 30_000);
});
