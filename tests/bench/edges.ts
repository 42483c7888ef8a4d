// Time until the truth shows, at the defaults (issue 11): each fault made for real, then the live
// view polled until it tells it, all four at once (the slowest sets the length, about 75 s):
//   - an SDK agent (the TypeScript SDK, heartbeat every 30 s) killed with SIGKILL -> stale;
//   - an agent supervised by the runner, SIGKILLed -> its crash in the history (restarted at once);
//   - a program under `agent-status run`, SIGKILLed -> error (the wrapper's report);
//   - the runner itself SIGKILLed -> its agents' rows read runner_status silent.
// Times are from the kill; the SDK agent's also from its last heartbeat, since where in its 30 s
// cycle the kill lands decides most of it.
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { sleep, until, withBenchStack } from './bench-stack.ts';

const REPO = resolve(import.meta.dirname, '../..');
const FIXTURES = join(REPO, 'tests/fixtures');
const CLI = join(REPO, 'runner/bin/agent-status.js');

export async function run() {
  await withBenchStack('edges', async ({ stack, sql, dir, token, spawn: spawnIn }) => {
    const live = async (name: string) => (await sql`select * from public.agent_status_live where agent_name = ${name}`)[0];
    const spawn = (file: string, args: string[], env: Record<string, string>) => spawnIn(file, args, env, REPO);

    // the runner, all defaults, with one agent
    const runnerToken = await token('runner', { host: 'edges-host' });
    const configFile = join(dir, 'agents.yaml');
    writeFileSync(
      configFile,
      stringify({
        supabase: { url: stack.url, anon_key: stack.anonKey },
        runner: { state_dir: join(dir, 'state') },
        agents: [{ name: 'supervised', command: join(FIXTURES, 'forever.sh'), autostart: true }],
      }),
    );
    const runner = spawn(process.execPath, [CLI, 'runner', '--config', configFile], { AGENT_STATUS_RUNNER_TOKEN: runnerToken });
    // an SDK agent and a wrapped program, all defaults
    const sdk = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'tests/sdk/fixtures/node-agent.ts')], {
      AGENT_STATUS_URL: stack.url,
      AGENT_STATUS_TOKEN: await token('agent', { agent: 'sdk' }),
      AGENT_NAME: 'sdk',
    });
    spawn(process.execPath, [CLI, 'run', '--name', 'wrapped', '--', join(FIXTURES, 'forever.sh')], {
      AGENT_STATUS_URL: stack.url,
      AGENT_STATUS_TOKEN: await token('agent', { agent: 'wrapped' }),
    });
    const ready = async (name: string) =>
      until(
        `${name} running`,
        async () => ((await live(name))?.status === 'running' && (await live(name)).pid ? await live(name) : undefined),
        60_000,
      );
    const [supervised, wrapped] = await Promise.all([ready('supervised'), ready('wrapped'), ready('sdk')]);
    // the runner has declared its interval once its first heartbeat went out
    await until(
      'the runner to declare its interval',
      async () => ((await live('supervised')).runner_heartbeat_interval_s ? true : undefined),
      60_000,
    );
    await sleep(Math.random() * 30_000); // land the kills anywhere in the heartbeat cycles

    const killedAt = Date.now();
    sdk.kill('SIGKILL');
    process.kill(supervised.pid, 'SIGKILL');
    process.kill(wrapped.pid, 'SIGKILL');
    const timed = async (what: string, probe: () => Promise<boolean>) => {
      await until(what, async () => ((await probe()) ? true : undefined), 180_000);
      return (Date.now() - killedAt) / 1000;
    };
    const [crashS, wrappedS] = await Promise.all([
      // its restart follows at once (on-failure), so the crash is looked for in the history
      timed(
        'the runner to report the crash',
        async () =>
          (
            await sql`select 1 from public.agent_events e join public.agent_status a on a.id = e.agent_id
                     where a.agent_name = 'supervised' and e.kind = 'crashed'`
          ).length > 0,
      ),
      timed('the wrapper to report the kill', async () => (await live('wrapped')).status === 'error'),
    ]);
    const runnerKilledAt = Date.now();
    runner.kill('SIGKILL');
    const [staleS, silentS] = await Promise.all([
      timed('the SDK agent to read stale', async () => (await live('sdk')).status === 'stale'),
      until(
        'the runner to read silent',
        async () => ((await live('supervised')).runner_status === 'silent' ? true : undefined),
        180_000,
      ).then(() => (Date.now() - runnerKilledAt) / 1000),
    ]);
    // When the database tells it (its own clock, the same machine's): the event's time, or the
    // deadline the view applies. A poll sees it later by however slow the poll is on a busy machine.
    const eventAt = async (name: string, kind: string) =>
      (
        await sql`select min(e.at) as at from public.agent_events e join public.agent_status a on a.id = e.agent_id
                  where a.agent_name = ${name} and e.kind = ${kind}`
      )[0].at as Date;
    const [sdkStored] = await sql`select stale_at, last_heartbeat from public.agent_status where agent_name = 'sdk'`;
    const [runnerRow] = await sql`select last_seen_at, silent_after_s from public.runner_status_live where host = 'edges-host'`;
    const sdkRow = await live('sdk');
    const since = (at: Date, from: number) => ((at.getTime() - from) / 1000).toFixed(2);
    const rows = [
      ['runner-supervised agent SIGKILLed -> crashed', since(await eventAt('supervised', 'crashed'), killedAt), crashS.toFixed(2)],
      ['agent-status run program SIGKILLed -> error', since(await eventAt('wrapped', 'error'), killedAt), wrappedS.toFixed(2)],
      [
        `SDK agent SIGKILLed -> stale (timeout ${sdkRow.heartbeat_timeout_s} s from its last heartbeat, ${sdkRow.heartbeat_timeout_source})`,
        since(sdkStored.stale_at, killedAt),
        staleS.toFixed(1),
      ],
      [
        `runner SIGKILLed -> its agents' runner_status silent (after ${runnerRow.silent_after_s} s)`,
        since(new Date(runnerRow.last_seen_at.getTime() + runnerRow.silent_after_s * 1000), runnerKilledAt),
        silentS.toFixed(1),
      ],
    ];
    console.log('  fault, at the defaults | in the database, s after the kill | seen by a 50 ms poll, s');
    for (const [what, database, poll] of rows) console.log(`  ${what} | ${database} | ${poll}`);
    console.log(`  (the SDK agent's last heartbeat was ${since(sdkStored.last_heartbeat, killedAt)} s from the kill)`);
  });
}
