// Time until the truth shows, at the defaults (issue 11): each fault made for real, then the live
// view polled until it tells it, all four at once (the slowest sets the length, about 75 s):
//   - an SDK agent (the TypeScript SDK, heartbeat every 30 s) killed with SIGKILL -> stale;
//   - an agent supervised by the runner, SIGKILLed -> its crash in the history (restarted at once);
//   - a program under `agent-status run`, SIGKILLed -> error (the wrapper's report);
//   - the runner itself SIGKILLed -> its agents' rows read runner_status silent.
// Times are from the kill; the SDK agent's also from its last heartbeat, since where in its 30 s
// cycle the kill lands decides most of it. Then (issue 19), on a second host at the defaults:
//   - restarts counted per crash of an SDK agent under the runner (it and the runner both report
//     each start): must be 1.00;
//   - from the runner's restart to `stable` for an agent it adopted before it was stable, and for
//     one it re-started after it died while no runner ran (reset_after is 30 s by default);
//   - notices queued by a SIGTERM of the runner whose agents were stopped on purpose: 0 critical.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import postgres from 'postgres';
import { stringify } from 'yaml';
import { startPostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { startStack } from '../../runner/local-stack/stack.ts';

const REPO = resolve(import.meta.dirname, '../..');
const FIXTURES = join(REPO, 'tests/fixtures');
const CLI = join(REPO, 'runner/bin/agent-status.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-bench-edges-'));
  const cluster = await startPostgresCluster({});
  let stack: Awaited<ReturnType<typeof startStack>> | undefined;
  const children: ResultPromise[] = [];
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await admin`create database bench_edges`;
    await admin.end();
    stack = await startStack({
      port: await freePort(),
      database: { kind: 'url', url: cluster.urlFor('bench_edges') },
      functions: true,
      sweep: false,
    });
    const { sql } = stack;
    const token = async (kind: string, scope: { agent?: string; host?: string }) =>
      (await sql`select token from public.create_api_token(${kind}, null, ${scope.agent ?? null}, ${scope.host ?? null})`)[0]
        .token as string;
    const live = async (name: string) => (await sql`select * from public.agent_status_live where agent_name = ${name}`)[0];
    const spawn = (file: string, args: string[], env: Record<string, string>) => {
      const child = execa(file, args, { cwd: REPO, env, reject: false, stdio: 'ignore', detached: true });
      children.push(child);
      return child;
    };

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

    // Issue 19, on a second host with its own runner, all defaults but the agents' restart policy.
    const host2Token = await token('runner', { host: 'edges-restarts' });
    const config2 = join(dir, 'restarts.yaml');
    writeFileSync(
      config2,
      stringify({
        supabase: { url: stack.url, anon_key: stack.anonKey },
        runner: { state_dir: join(dir, 'state-restarts') },
        agents: [
          {
            name: 'sdk-under-runner',
            command: 'python3',
            args: ['-u', join(FIXTURES, 'sdk-agent.py')],
            env: { PYTHONPATH: join(REPO, 'shared/python') },
            autostart: true,
            restart: 'always',
          },
          { name: 'adopted-unstable', command: join(FIXTURES, 'forever.sh'), autostart: true, restart: 'always' },
          { name: 'restarted-unstable', command: join(FIXTURES, 'forever.sh'), autostart: true, restart: 'always' },
        ],
      }),
    );
    const runner2 = () => spawn(process.execPath, [CLI, 'runner', '--config', config2], { AGENT_STATUS_RUNNER_TOKEN: host2Token });
    let first = runner2();
    await Promise.all([ready('adopted-unstable'), ready('restarted-unstable')]);
    // the SDK's own report says health 90; the runner's start alone does not
    const reported = (pid?: number) =>
      until(
        'the SDK agent reporting from a new process',
        async () => {
          const row = await live('sdk-under-runner');
          return row.pid && row.pid !== pid && row.health === 90 ? row : undefined;
        },
        120_000,
      );
    let sdkRow2 = await reported();
    const CRASHES = 5;
    for (let crash = 0; crash < CRASHES; crash++) {
      process.kill(sdkRow2.pid, 'SIGKILL');
      sdkRow2 = await reported(sdkRow2.pid);
    }
    const perCrash = sdkRow2.restarts_total / CRASHES;

    // one agent crashed and restarted, not yet stable, when the runner is SIGKILLed: adopted; the
    // other killed while no runner runs: re-started. From the next runner's start to `stable`.
    const unstable = await live('adopted-unstable');
    process.kill(unstable.pid, 'SIGKILL');
    await until('the restart', async () => ((await live('adopted-unstable')).pid !== unstable.pid ? true : undefined), 60_000);
    first.kill('SIGKILL');
    await first;
    process.kill(-(await live('restarted-unstable')).pid, 'SIGKILL');
    const restartedAt = Date.now();
    first = runner2();
    const stableAfter = (name: string) =>
      until(
        `${name} stable`,
        async () => {
          const [row] = await sql`select e.at from public.agent_events e join public.agent_status a on a.id = e.agent_id
                                  where a.agent_name = ${name} and e.kind = 'stable' and e.at > ${new Date(restartedAt)}`;
          return row ? (row.at.getTime() - restartedAt) / 1000 : undefined;
        },
        120_000,
      );
    const [adoptedS, restartedS] = await Promise.all([stableAfter('adopted-unstable'), stableAfter('restarted-unstable')]);

    // every agent stopped on purpose, then SIGTERM: the notices it queues, past its silence deadline and a sweep
    await sql`select public.alert_channel_save('edges', 'webhook', 'http://127.0.0.1:9/edges', 'whsec_edges_0123456789')`;
    const [{ last }] = await sql`select coalesce(max(id), 0) as last from public.alert_deliveries`;
    const stops =
      await sql`select id from public.enqueue_agent_commands(p_action => 'stop', p_agent_name => null, p_host => 'edges-restarts')`;
    await until(
      'the stops',
      async () =>
        (await sql`select 1 from public.agent_commands where id in ${sql(stops.map((c) => c.id))} and status = 'succeeded'`).length ===
        stops.length
          ? true
          : undefined,
      60_000,
    );
    first.kill('SIGTERM');
    await first;
    const [{ silent_after_s }] = await sql`select silent_after_s from public.runner_status_live where host = 'edges-restarts'`;
    await sleep((silent_after_s + 1) * 1000);
    await sql`select public.agent_status_sweep()`;
    const [notices] = await sql`select count(*)::int as all, count(*) filter (where notice ->> 'severity' = 'critical')::int as critical
                                from public.alert_deliveries where id > ${last} and notice ->> 'host' = 'edges-restarts'`;
    console.log('  issue 19, at the defaults:');
    console.log(`  restarts counted per crash of an SDK agent under the runner (${CRASHES} SIGKILLs) | ${perCrash.toFixed(2)}`);
    console.log(`  runner restart -> stable, agent adopted before it was stable | ${adoptedS.toFixed(1)} s`);
    console.log(`  runner restart -> stable, agent re-started after it died while no runner ran | ${restartedS.toFixed(1)} s`);
    console.log(
      `  notices queued by SIGTERM of a runner whose agents were stopped on purpose | ${notices.all} (${notices.critical} critical)`,
    );
  } finally {
    for (const child of children) {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await stack?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
