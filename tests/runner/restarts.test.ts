// Issue 19 through a real runner and real processes: one restart counted per crash even when the
// agent's SDK reports its own start too; an agent crashed or restarted while no runner watched still
// reaches `stable` under the next runner; a restart the dead runner promised is carried out by the
// next one.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { useTestStack } from '../helpers/stack.ts';
import { alive, FIXTURES, tempDir, waitFor } from './helpers.ts';
import { enqueue, events, finished, fixtureAgent, makeHost } from './host.ts';

const stack = useTestStack();

async function live(name: string) {
  const [row] = await stack.db.sql`select * from public.agent_status_live where agent_name = ${name}`;
  return row;
}

/** Waits until the agent reads running on a process other than `pid`: restarted, then stable. */
function runningAgain(name: string, pid: number, timeoutMs = 30_000) {
  return waitFor(
    `${name} to run again on a new process and be stable`,
    async () => {
      const row = await live(name);
      return row.status === 'running' && row.pid && row.pid !== pid ? row : undefined;
    },
    timeoutMs,
    100,
  );
}

it('an SDK agent under a runner counts one restart per crash, though it and its runner both report the start', async () => {
  const agent = fixtureAgent('sdk-agent.py', {
    command: 'python3',
    args: ['-u', join(FIXTURES, 'sdk-agent.py')],
    env: { PYTHONPATH: resolve(import.meta.dirname, '../../shared/python') },
    restart: 'always',
    // long enough for Python to start and report under load (3 s was seen), as in the demo's 30 s
    backoff: { reset_after: '10s' },
  });
  const host = await makeHost(stack, [agent]);
  await host.start();
  const { sql } = stack.db;
  expect(await finished(sql, await enqueue(sql, 'start', agent.name))).toMatchObject({ status: 'succeeded' });
  let row = await waitFor('its own report', async () => ((await live(agent.name)).health === 90 ? live(agent.name) : undefined), 20_000);

  for (const crash of [1, 2]) {
    process.kill(row.pid, 'SIGKILL');
    row = await runningAgain(agent.name, row.pid);
    // both starts (the runner's and the SDK's) of every process reached the database
    const starts = (await events(sql, agent.name)).filter((e) => e.kind === 'started');
    expect(starts.length).toBe(2 * (crash + 1));
    expect(row).toMatchObject({ restarts_total: crash, restarts_10m: crash });
  }
}, 90_000);

it('a runner SIGKILLed, its agent killed meanwhile, the runner started again: restarted, then stable and running', async () => {
  const steady = fixtureAgent('forever.sh', { autostart: true, restart: 'always', backoff: { reset_after: '2s' } });
  const host = await makeHost(stack, [steady]);
  const { process: first } = await host.spawn();
  const before = await waitFor('the autostart', async () =>
    (await live(steady.name)).status === 'running' ? live(steady.name) : undefined,
  );
  first.kill('SIGKILL');
  await first;
  process.kill(-before.pid, 'SIGKILL');
  await waitFor('the orphan to be gone', () => !alive(before.pid));

  await host.spawn();
  const after = await runningAgain(steady.name, before.pid);
  expect(after).toMatchObject({ restarts_total: 1, crash_looping: false, health: 100 });
  const kinds = (await events(stack.db.sql, steady.name)).map((e) => e.kind);
  expect(kinds.slice(kinds.indexOf('crashed'))).toEqual(['crashed', 'started', 'stable']);
}, 60_000);

it('an agent restarted after a crash and adopted by the next runner before it was stable: stable, one restart', async () => {
  const steady = fixtureAgent('forever.sh', { autostart: true, restart: 'always', backoff: { reset_after: '6s' } });
  const host = await makeHost(stack, [steady]);
  const { process: first } = await host.spawn();
  const before = await waitFor('the autostart', async () =>
    (await live(steady.name)).status === 'running' ? live(steady.name) : undefined,
  );
  process.kill(before.pid, 'SIGKILL');
  const restarted = await waitFor('the restart', async () => {
    const row = await live(steady.name);
    return row.status === 'warning' && row.pid !== before.pid ? row : undefined;
  });
  first.kill('SIGKILL');
  await first;

  await host.spawn();
  const after = await waitFor(
    'stable under the new runner',
    async () => {
      const row = await live(steady.name);
      return row.status === 'running' ? row : undefined;
    },
    20_000,
    100,
  );
  expect(after).toMatchObject({ pid: restarted.pid, restarts_total: 1 });
  const kinds = (await events(stack.db.sql, steady.name)).map((e) => e.kind);
  expect(kinds.slice(kinds.indexOf('crashed'))).toEqual(['crashed', 'started', 'adopted', 'stable']);
}, 60_000);

it('an agent waiting out its backoff when the runner died is restarted by the next runner, not left "restarting in 20 s"', async () => {
  const times = join(tempDir(), 'times');
  const looping = fixtureAgent('exits-after.sh', {
    restart: 'on-failure',
    min_uptime: '200ms',
    env: { RUN_SECONDS: '0.5', EXIT_CODE: '1', TIMES: times },
    backoff: { initial: '20s', max: '20s', reset_after: '30s' },
  });
  const host = await makeHost(stack, [looping]);
  const { process: first } = await host.spawn();
  const { sql } = stack.db;
  await finished(sql, await enqueue(sql, 'start', looping.name));
  await waitFor(
    'the backoff after the second crash',
    async () => {
      const row = await live(looping.name);
      return row.status === 'error' && row.next_restart_at && row.restarts_total === 1;
    },
    10_000,
  );
  first.kill('SIGKILL');
  await first;

  const starts = () => readFileSync(times, 'utf8').match(/^start /gm)?.length;
  expect(starts()).toBe(2);
  await host.spawn();
  // (the restart adds no event row: it is folded into the crash loop's row)
  await waitFor('the third start, by the next runner', () => starts() === 3, 10_000, 100);
  expect(await live(looping.name)).toMatchObject({ restarts_total: 2 });
}, 60_000);

it('an SDK agent under a runner that warns, then reports the same status plainly: the reason stays, one warning counted', async () => {
  const agent = fixtureAgent('sdk-warning-agent.py', {
    command: 'python3',
    args: ['-u', join(FIXTURES, 'sdk-warning-agent.py')],
    env: { PYTHONPATH: resolve(import.meta.dirname, '../../shared/python') },
  });
  const host = await makeHost(stack, [agent]);
  await host.start();
  const { sql } = stack.db;
  expect(await finished(sql, await enqueue(sql, 'start', agent.name))).toMatchObject({ status: 'succeeded' });
  // its last plain report (health 66) arrived after the warning with its message
  const row = await waitFor(
    'its last plain report',
    async () => ((await live(agent.name)).health === 66 ? live(agent.name) : undefined),
    30_000,
  );
  expect(row).toMatchObject({ status: 'warning', status_reason: 'disk 91% full', last_warning: 'disk 91% full', warnings_1h: 1 });
  // the history has one warning of this episode; rows written for the health changes are marked so
  const warnings = (await events(sql, agent.name)).filter((e) => e.kind === 'warning');
  expect(warnings.filter((e) => !e.details?.same_episode).map((e) => e.message)).toEqual(['disk 91% full']);
}, 90_000);
