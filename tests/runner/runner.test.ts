// The runner end to end: commands enqueued in the database, carried out on real processes, results
// and statuses read back from the database. The runner talks to it only through PostgREST.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { alive, tempDir, waitFor } from './helpers.ts';
import { agent, agentProcesses, enqueue, events, finished, fixtureAgent, makeHost } from './host.ts';

const stack = useTestStack();

describe('commands', () => {
  it('start -> running with its pid; start again -> "already running"; restart -> new pid; stop -> stopped', async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever]);
    await host.start();
    const { sql } = stack.db;

    expect(await finished(sql, await enqueue(sql, 'start', forever.name))).toMatchObject({ status: 'succeeded' });
    const running = await agent(sql, forever.name);
    expect(running.status).toBe('running');
    expect(agentProcesses(forever.name)).toEqual([running.pid]);

    const again = await finished(sql, await enqueue(sql, 'start', forever.name));
    expect(again).toEqual({ status: 'succeeded', result: `already running (pid ${running.pid})` });
    expect(agentProcesses(forever.name)).toEqual([running.pid]);

    const restart = await finished(sql, await enqueue(sql, 'restart', forever.name));
    const restarted = await agent(sql, forever.name);
    expect(restart).toEqual({ status: 'succeeded', result: `restarted: pid ${running.pid} -> ${restarted.pid}` });
    expect(restarted.pid).not.toBe(running.pid);
    expect(restarted.status).toBe('running');
    expect(agentProcesses(forever.name)).toEqual([restarted.pid]);

    const stop = await finished(sql, await enqueue(sql, 'stop', forever.name));
    expect(stop.status).toBe('succeeded');
    expect(stop.result).toMatch(/^stopped \(pid \d+\): stopped by SIGTERM in /);
    expect(await agent(sql, forever.name)).toMatchObject({ status: 'stopped', pid: null, exit_code: 0 });
    expect(agentProcesses(forever.name)).toEqual([]);
    expect((await events(sql, forever.name)).map((e) => e.kind)).toEqual(
      expect.arrayContaining(['started', 'terminated', 'command_succeeded']),
    );
  });

  it('kills a child that ignores SIGTERM after its stop timeout, and its grandchildren', async () => {
    const grandchildFile = join(tempDir(), 'grandchildren');
    const stubborn = fixtureAgent('spawns-grandchildren.sh', { stop_timeout: '500ms', env: { GRANDCHILD_PIDS: grandchildFile } });
    const host = await makeHost(stack, [stubborn]);
    await host.start();
    const { sql } = stack.db;
    await finished(sql, await enqueue(sql, 'start', stubborn.name));
    const { pid } = await agent(sql, stubborn.name);
    const grandchildren = await waitFor('two grandchildren', () => {
      const pids = existsSync(grandchildFile) ? readFileSync(grandchildFile, 'utf8').trim().split('\n').map(Number) : [];
      return pids.length === 2 ? pids : undefined;
    });
    const stop = await finished(sql, await enqueue(sql, 'stop', stubborn.name));
    // the agent itself stops on SIGTERM; its children ignore it and are killed with the group
    expect(stop.result).toContain('did not stop within 0.5 s of SIGTERM; killed with SIGKILL');
    expect([pid!, ...grandchildren].some(alive)).toBe(false);
    expect(await agent(sql, stubborn.name)).toMatchObject({ status: 'stopped' });
  });

  it('50 start commands at once: exactly one process', async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever]);
    await host.start();
    const { sql } = stack.db;
    const ids = (
      await sql`
      insert into public.agent_commands (agent_id, action)
      select a.id, 'start' from public.agent_status a, generate_series(1, 50) where a.agent_name = ${forever.name}
      returning id`
    ).map((row) => Number(row.id));
    const results = await Promise.all(ids.map((id) => finished(sql, id, 30_000)));
    const { pid } = await agent(sql, forever.name);
    expect(results.filter((r) => r.status === 'succeeded')).toHaveLength(50);
    expect(results.filter((r) => r.result === `already running (pid ${pid})`)).toHaveLength(49);
    expect(agentProcesses(forever.name)).toEqual([pid]);
  });

  it('a second runner of one host is refused, naming the live one; with takeover the first one stops and never undoes a stop', async () => {
    const quiet = fixtureAgent('forever.sh', { restart: 'always' });
    const host = await makeHost(stack, [quiet]);
    let stopped: string | undefined;
    await host.start(() => {}, { onStopped: (reason) => (stopped = reason) });
    // the same state folder is refused by the lock file
    await expect(host.start()).rejects.toThrow(/another runner \(pid \d+\) is running with this state folder/);
    // the same token with its own state folder, which the lock cannot see: refused by the database's lease
    const second = await makeHost(stack, [quiet], {}, host);
    await expect(second.start()).rejects.toThrow(
      new RegExp(`another runner is live on host '${host.host}': pid ${process.pid}, running since .*, last seen \\d+ s ago.*--takeover`),
    );
    const { sql } = stack.db;
    await finished(sql, await enqueue(sql, 'start', quiet.name));
    const { pid } = await agent(sql, quiet.name);

    // an explicit takeover: the new runner adopts what the first one started (the lease names its
    // mark); the first is refused at its next poll and stops, leaving the agent running
    await second.start(() => {}, { takeover: true });
    expect(await waitFor('the first runner to stop', () => stopped)).toMatch(/this runner no longer holds the lease of host/);
    expect(alive(pid!)).toBe(true);
    await waitFor('the new runner to adopt the agent', async () => (await events(sql, quiet.name)).some((e) => e.kind === 'adopted'));
    // the new runner alone acts now: a stop stays a stop
    expect(await finished(sql, await enqueue(sql, 'stop', quiet.name))).toMatchObject({ status: 'succeeded' });
    expect(alive(pid!)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await agent(sql, quiet.name)).toMatchObject({ status: 'stopped', pid: null });
  });

  it('a copy started by hand is adopted by the next start, not started twice', async () => {
    const scraper = fixtureAgent('forever.sh', { match: 'forever\\.sh --by-hand' });
    const host = await makeHost(stack, [scraper], { scan_interval: '1h' });
    await host.start();
    const byHand = execa(scraper.command, ['--by-hand'], { detached: true, cleanup: false, stdio: 'ignore', reject: false });
    try {
      await waitFor('the copy to run', () => alive(byHand.pid!));
      const { sql } = stack.db;
      const start = await finished(sql, await enqueue(sql, 'start', scraper.name));
      expect(start).toEqual({ status: 'succeeded', result: `already running (pid ${byHand.pid})` });
      const adopted = (await events(sql, scraper.name)).find((e) => e.kind === 'adopted');
      expect(adopted?.message).toMatch(/command line matches/);
      expect(await agent(sql, scraper.name)).toMatchObject({ status: 'running', pid: byHand.pid });
    } finally {
      byHand.kill('SIGKILL');
    }
  });

  it('fails a command for an agent this host does not run: "no such agent on this host"', async () => {
    const known = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [known]);
    const runner = await host.start();
    const { sql } = stack.db;
    // an agent the database thinks this runner manages but its config does not list (a stale registration)
    await sql`insert into public.agent_status (agent_name, runner_id, host)
              select 'ghost-' || ${host.host}, id, host from public.runners where host = ${host.host}`;
    const result = await finished(sql, await enqueue(sql, 'start', `ghost-${host.host}`));
    expect(result).toEqual({ status: 'failed', result: `no such agent on this host (the runner on ${runner.host} manages ${known.name})` });
  });
});

describe('the database', () => {
  it('forgot the runner (its row deleted): it registers again and goes on', async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever]);
    await host.start();
    const { sql } = stack.db;
    await sql.begin(async (tx) => {
      await tx`delete from public.agent_events where agent_id is null and runner_id = (select id from public.runners where host = ${host.host})`;
      await tx`delete from public.runners where host = ${host.host}`;
    });
    // registered: its agent managed again (the lease makes the runner's row a moment before)
    await waitFor(
      'the runner to register again',
      async () =>
        (
          await sql`select 1 from public.agent_status a join public.runners r on r.id = a.runner_id
                   where r.host = ${host.host} and a.agent_name = ${forever.name}`
        ).length === 1,
    );
    expect(await finished(sql, await enqueue(sql, 'start', forever.name))).toMatchObject({ status: 'succeeded' });
  });

  it('with realtime on and no Realtime server (the local stack), polling carries on and says so once', async () => {
    const forever = fixtureAgent('forever.sh');
    const host = await makeHost(stack, [forever], {}, undefined, { realtime: true });
    const lines: string[] = [];
    await host.start((line) => lines.push(line));
    const { sql } = stack.db;
    expect(await finished(sql, await enqueue(sql, 'start', forever.name))).toMatchObject({ status: 'succeeded' });
    await waitFor('the realtime failure to be logged', () => lines.some((l) => l.startsWith('realtime unavailable')), 15_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(lines.filter((l) => l.startsWith('realtime')).length).toBe(1);
    expect(await finished(sql, await enqueue(sql, 'stop', forever.name))).toMatchObject({ status: 'succeeded' });
  });
});

describe('supervision', () => {
  it('sees an agent SIGKILLed behind its back and restarts it under policy always', async () => {
    const always = fixtureAgent('forever.sh', { restart: 'always' });
    const never = fixtureAgent('forever.sh', { restart: 'never' });
    const host = await makeHost(stack, [always, never]);
    await host.start();
    const { sql } = stack.db;
    await Promise.all([finished(sql, await enqueue(sql, 'start', always.name)), finished(sql, await enqueue(sql, 'start', never.name))]);
    const before = await agent(sql, always.name);
    const neverBefore = await agent(sql, never.name);
    process.kill(before.pid!, 'SIGKILL');
    process.kill(neverBefore.pid!, 'SIGKILL');
    const after = await waitFor(
      'a new pid in the database',
      async () => {
        const row = await agent(sql, always.name);
        // warning until it stays up backoff.reset_after: it crashed
        return row.status === 'warning' && row.pid !== before.pid && row.pid ? row : undefined;
      },
      5000,
    );
    expect(agentProcesses(always.name)).toEqual([after.pid]);
    const dead = await waitFor(
      'the killed agent to be recorded',
      async () => {
        const row = await agent(sql, never.name);
        return row.status === 'error' ? row : undefined;
      },
      5000,
    );
    expect(dead).toMatchObject({ pid: null, exit_signal: 'SIGKILL' });
    expect(agentProcesses(never.name)).toEqual([]);
  });

  it('a crash loop backs off and ends in error with the last stderr line in the history', async () => {
    const crashing = fixtureAgent('crashes.sh', { restart: 'always', backoff: { initial: '50ms', max: '400ms', max_retries: 3 } });
    const host = await makeHost(stack, [crashing]);
    await host.start();
    const { sql } = stack.db;
    const start = await finished(sql, await enqueue(sql, 'start', crashing.name));
    expect(start).toEqual({ status: 'failed', result: 'exited within 0.3 s with code 2: fatal: missing setting DATABASE_URL' });
    const final = await waitFor(
      'the crash loop to be given up',
      async () => {
        const rows = await events(sql, crashing.name);
        return rows.find((e) => e.kind === 'crashed' && /^crash loop/.test(e.message));
      },
      10_000,
    );
    expect(final.message).toContain('fatal: missing setting DATABASE_URL');
    expect(final.details.log_tail.at(-1)).toBe('fatal: missing setting DATABASE_URL');
    expect(final.to_status).toBe('error');
    const row = await agent(sql, crashing.name);
    expect(row).toMatchObject({ status: 'error', exit_code: 2 });
    expect(row.last_error).toMatch(/^crash loop: ended 4 times in a row within 0.3 s/);
    const kinds = (await events(sql, crashing.name)).map((e) => e.kind).filter((k) => k === 'started' || k === 'crashed');
    // a loop is 3 unplanned exits within the window (agent_private.crash_looping): the third crash is
    // the crash loop's row; the fourth is the runner giving up, a row of its own
    expect(kinds).toEqual(['started', 'crashed', 'started', 'crashed', 'started', 'crashed', 'crashed']);
    const loop = (await events(sql, crashing.name)).filter((e) => e.kind === 'crashed')[2];
    expect(loop.details).toMatchObject({ crash_loop: true, repeats: 0, exit_code: 2 });
    const [counted] = await sql`select restarts_total from public.agent_status_live where agent_name = ${crashing.name}`;
    expect(counted.restarts_total).toBe(3);
  });
});
