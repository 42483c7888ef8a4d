// One agent flooding the runner's channel against its neighbours (issue 20, case 8): another agent's
// heartbeat latency through the channel (p50/p99, one heartbeat every 100 ms) and the stop+start time
// of a third agent, first with the channel quiet (the baseline), then while the flooding agent sends
// heartbeats on 200 connections at once (channel-flood.ts, its own process). Reported before the fix:
// 20-40 ms -> 1-7 s, and stop+start 2.0 -> 8.4 s.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { processEnvironment } from '../../runner/daemon/proc.ts';
import { postOverSocket } from '../../shared/sdk/unix-socket.ts';
import { sleep, until, withBenchStack } from './bench-stack.ts';
import { percentile } from './load.ts';

const REPO = resolve(import.meta.dirname, '../..');
const FOREVER = join(REPO, 'tests/fixtures/forever.sh');
const CLI = join(REPO, 'runner/bin/agent-status.js');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const FLOOD_CONNECTIONS = 200;
const CYCLES = 3;
const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

export async function run() {
  await withBenchStack('neighbours', async ({ stack, sql, dir, token, spawn: spawnIn }) => {
    const spawn = (file: string, args: string[], env: Record<string, string>) => spawnIn(file, args, env, REPO);
    const configFile = join(dir, 'agents.yaml');
    writeFileSync(
      configFile,
      stringify({
        supabase: { url: stack.url, anon_key: stack.anonKey },
        runner: { state_dir: join(dir, 'state') },
        agents: ['quiet', 'flooder', 'cycled'].map((name) => ({ name, command: FOREVER, autostart: true })),
      }),
    );
    const runner = spawn(process.execPath, [CLI, 'runner', '--config', configFile], {
      AGENT_STATUS_RUNNER_TOKEN: await token('runner', { host: 'h' }),
    });
    // what the runner gave each agent: the channel's socket and its own secret
    const channelOf = async (name: string) =>
      until(
        `${name} running under the runner`,
        async () => {
          const [row] = await sql`select pid from public.agent_status where agent_name = ${name} and status = 'running'`;
          const env = row?.pid ? processEnvironment(row.pid) : undefined;
          return env?.get('AGENT_STATUS_SOCKET') ? env : undefined;
        },
        60_000,
      );
    const quiet = await channelOf('quiet');
    const flooder = await channelOf('flooder');
    await channelOf('cycled');

    const heartbeatLatencies = async () => {
      const latencies: number[] = [];
      let failures = 0;
      const end = Date.now() + SECONDS * 1000;
      while (Date.now() < end) {
        const started = performance.now();
        const answer = await postOverSocket(quiet.get('AGENT_STATUS_SOCKET')!, `${quiet.get('AGENT_STATUS_URL')}/functions/v1/heartbeat`, {
          headers: { 'content-type': 'application/json', authorization: `Bearer ${quiet.get('AGENT_STATUS_TOKEN')}` },
          body: JSON.stringify({ agent_name: 'quiet', health: 100 }),
          signal: AbortSignal.timeout(30_000),
        }).catch(() => undefined);
        latencies.push(performance.now() - started);
        if (answer?.status !== 200) failures++;
        await answer?.text();
        await sleep(100);
      }
      return { latencies: latencies.sort((a, b) => a - b), failures };
    };
    const finished = (id: number) =>
      until(
        `command ${id}`,
        async () => {
          const [row] = await sql`select status from public.agent_commands where id = ${id}`;
          return ['succeeded', 'failed', 'expired'].includes(row.status) ? row.status : undefined;
        },
        60_000,
      );
    const stopStart = async () => {
      const seconds: number[] = [];
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const started = performance.now();
        for (const action of ['stop', 'start']) {
          const [{ id }] = await sql`select id from public.enqueue_agent_commands(${action}, 'cycled')`;
          const status = await finished(Number(id));
          if (status !== 'succeeded') throw new Error(`${action} of cycled ${status}`);
        }
        seconds.push((performance.now() - started) / 1000);
      }
      return seconds;
    };
    // where the two cores go meanwhile: the runner's share of one core, and the flooder's
    const measure = async (flooderPid?: number) => {
      const cpuBefore = [cpuSeconds(runner.pid!), flooderPid ? cpuSeconds(flooderPid) : 0];
      const started = performance.now();
      const [heartbeats, cycles] = await Promise.all([heartbeatLatencies(), stopStart()]);
      const elapsed = (performance.now() - started) / 1000;
      const share = (now: number, before: number) => `${Math.round((100 * (now - before)) / elapsed)}%`;
      const cpu = `runner ${share(cpuSeconds(runner.pid!), cpuBefore[0])}${flooderPid ? `, flooder ${share(cpuSeconds(flooderPid), cpuBefore[1])}` : ''}`;
      return { ...heartbeats, cycles, cpu };
    };

    const baseline = await measure();
    const flood = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'tests/bench/channel-flood.ts')], {
      PATH: process.env.PATH!,
      FLOOD_SOCKET: flooder.get('AGENT_STATUS_SOCKET')!,
      FLOOD_URL: flooder.get('AGENT_STATUS_URL')!,
      FLOOD_TOKEN: flooder.get('AGENT_STATUS_TOKEN')!,
      FLOOD_AGENT: 'flooder',
      FLOOD_CONNECTIONS: String(FLOOD_CONNECTIONS),
    });
    await sleep(3000); // the flood's connections open and fill the channel
    const flooded = await measure(flood.pid);

    const row = (what: string, m: Awaited<ReturnType<typeof measure>>) =>
      `  ${what} | ${percentile(m.latencies, 50).toFixed(1)} | ${percentile(m.latencies, 99).toFixed(1)} | ` +
      `${m.latencies.length} (${m.failures} not 200) | ${m.cycles.map((s) => s.toFixed(2)).join(', ')} | ${m.cpu}`;
    console.log(
      `  another agent's heartbeat through the channel, every 100 ms for ${SECONDS} s; stop+start of a third agent, ${CYCLES} cycles`,
    );
    console.log('  channel | heartbeat p50 ms | p99 ms | heartbeats | stop+start s | CPU of one core');
    console.log(row('quiet (baseline)', baseline));
    console.log(row(`one agent flooding on ${FLOOD_CONNECTIONS} connections`, flooded));
  });
}
