// What an idle host costs the project and itself: `agent-status runner` with three SDK agents at
// rest at default intervals (tests/fixtures/sdk-idle-agent.ts), no commands, for
// BENCH_QUIET_SECONDS (default 120) after a warm-up, four times in one run: polling only (no
// Realtime) and with Realtime hints live, each for the CLI in this checkout (through tsx) and for the
// CLI as the installed package runs it (the esbuild bundle, plain node). Counted: every PostgREST request the runner made
// (the runner talks to the stack through a counting proxy here), per SQL function, and the runner's
// CPU (its own and its waited-for children's, as the runner bench reads it) and RSS.
//
// The local stack has no Realtime server, so for the second run the proxy answers the Phoenix
// protocol's join and heartbeat on /realtime/v1/websocket itself (tests/helpers/counting-proxy.ts),
// which is all a subscription needs to read as live; it sends no hints (none are due at idle). Issue 22's baseline, measured the
// same way on the demo (poll 1 s, heartbeat 10 s, each agent heartbeat its own call, no Realtime):
// 264 requests in 120 s, ~190,000 a day. Goal: at most 10,000 a day with Realtime live.
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { execa, type ResultPromise } from 'execa';
import postgres from 'postgres';
import { stringify } from 'yaml';
import { startPostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { startStack } from '../../runner/local-stack/stack.ts';
import { countingProxy } from '../helpers/counting-proxy.ts';

const REPO = resolve(import.meta.dirname, '../..');
const SECONDS = Number(process.env.BENCH_QUIET_SECONDS ?? 120);
// agents on tsx take a while to start on a loaded machine; their started reports are not idle traffic
const WARMUP_MS = 30_000;
const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux
const BASELINE = { requests: 264, seconds: 120 };
const run$ = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
}

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

interface Idle {
  requests: number;
  perDay: number;
  byFunction: Record<string, number>;
  cpu: number;
  rss: number;
  live: boolean;
}

async function measure(stack: Awaited<ReturnType<typeof startStack>>, dir: string, realtime: boolean, entry: string): Promise<Idle> {
  const host = `quiet-${realtime ? 'realtime' : 'polling'}-${entry.endsWith('.mjs') ? 'bundle' : 'checkout'}`;
  const [{ token }] = await stack.sql`select token from public.create_api_token('runner', p_host => ${host}, p_new_agents => true)`;
  const proxy = await countingProxy(stack.url, { realtime });
  const configFile = join(dir, `${host}.yaml`);
  writeFileSync(
    configFile,
    stringify({
      supabase: { url: proxy.url, anon_key: stack.anonKey, realtime },
      runner: { state_dir: join(dir, host), stop_agents_on_exit: true },
      agents: [1, 2, 3].map((i) => ({
        name: `${host}-${i}`,
        command: process.execPath,
        args: ['--import', 'tsx', join(REPO, 'tests/fixtures/sdk-idle-agent.ts')],
        cwd: REPO,
        autostart: true,
      })),
    }),
  );
  let output = '';
  const runner: ResultPromise = execa(process.execPath, ['--max-semi-space-size=1', entry, 'runner', '--config', configFile], {
    cwd: REPO,
    env: { AGENT_STATUS_RUNNER_TOKEN: token },
    reject: false,
    all: true,
    buffer: { all: false },
  });
  runner.all!.on('data', (chunk) => (output += chunk));
  try {
    // ready (and subscribed, where it should be), then the warm-up: the agents start and say so
    const ready = realtime ? /realtime: listening/ : /supervising/;
    for (const deadline = Date.now() + 120_000; !ready.test(output); await sleep(100)) {
      if (runner.exitCode !== null) throw new Error(`the runner exited:\n${output}`);
      if (Date.now() > deadline) throw new Error(`the runner was not ready within 120 s:\n${output}`);
    }
    await sleep(WARMUP_MS);
    const live = /realtime: listening/.test(output);
    const from = proxy.calls.length;
    const ticks = cpuTicks(runner.pid!);
    const startedAt = Date.now();
    await sleep(SECONDS * 1000);
    const seconds = (Date.now() - startedAt) / 1000;
    const calls = proxy.calls.slice(from);
    const byFunction: Record<string, number> = {};
    for (const call of calls) byFunction[call] = (byFunction[call] ?? 0) + 1;
    return {
      requests: calls.length,
      perDay: (calls.length / seconds) * 86_400,
      byFunction,
      cpu: ((cpuTicks(runner.pid!) - ticks) / CLOCK_TICKS / seconds) * 100,
      rss: rssMb(runner.pid!),
      live,
    };
  } finally {
    runner.kill('SIGTERM');
    await Promise.race([runner, sleep(20_000)]);
    runner.kill('SIGKILL');
    await runner;
    await proxy.stop();
  }
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-bench-quiet-'));
  const cluster = await startPostgresCluster({});
  let stack: Awaited<ReturnType<typeof startStack>> | undefined;
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await admin`create database bench_quiet`;
    await admin.end();
    stack = await startStack({
      port: await freePort(),
      database: { kind: 'url', url: cluster.urlFor('bench_quiet') },
      functions: false,
      sweep: false,
    });
    const checkout = join(REPO, 'runner/bin/agent-status.js');
    const polling = await measure(stack, dir, false, checkout);
    const hinted = await measure(stack, dir, true, checkout);
    // what the installed package runs (runner/bin/agent-status.js finds no TypeScript there)
    await run$('npm', ['run', '--silent', 'build:runner'], { cwd: REPO });
    const bundle = join(REPO, 'dist', 'agent-status.mjs');
    const bundledPolling = await measure(stack, dir, false, bundle);
    const bundled = await measure(stack, dir, true, bundle);
    const line = (label: string, idle: Idle) =>
      console.log(
        `${label.padEnd(40)} ${String(idle.requests).padStart(6)} ${idle.perDay.toFixed(0).padStart(9)} ` +
          `${idle.cpu.toFixed(2).padStart(7)}% ${idle.rss.toFixed(0).padStart(6)} MB   ${Object.entries(idle.byFunction)
            .map(([fn, n]) => `${fn} ${n}`)
            .join(', ')}`,
      );
    console.log(
      `\nidle host, 3 SDK agents, default intervals, ${SECONDS} s counted from ${WARMUP_MS / 1000} s after the runner was ready:`,
    );
    console.log(`${''.padEnd(40)} ${'reqs'.padStart(6)} ${'per day'.padStart(9)} ${'CPU'.padStart(8)} ${'RSS'.padStart(9)}   by function`);
    console.log(
      `${'issue 22 baseline (demo, no Realtime)'.padEnd(40)} ${String(BASELINE.requests).padStart(6)} ${((BASELINE.requests / BASELINE.seconds) * 86_400).toFixed(0).padStart(9)}`,
    );
    line('polling only (no Realtime)', polling);
    line(`Realtime hints live${hinted.live ? '' : ' (NOT live: figure invalid)'}`, hinted);
    line('installed (bundle), polling only', bundledPolling);
    line(`installed (bundle), Realtime live${bundled.live ? '' : ' (NOT live)'}`, bundled);
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(
      `\nat most 10,000 requests a day with Realtime live (${hinted.perDay.toFixed(0)}): ${verdict(hinted.live && hinted.perDay <= 10_000)}`,
    );
    for (const [label, idle] of [
      ['in this checkout, polling only', polling],
      ['in this checkout, Realtime live', hinted],
      ['installed, Realtime live', bundled],
    ] as const) {
      console.log(
        `runner idle below 1% of a core and 80 MB RSS with 3 agents, ${label} (${idle.cpu.toFixed(2)}%, ${idle.rss.toFixed(0)} MB): ${verdict(idle.cpu < 1 && idle.rss < 80)}`,
      );
    }
  } finally {
    await stack?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
