// The host runner, measured as users run it (`agent-status runner` as its own process, talking to
// PostgREST through the gateway, polling only) next to supervisord (Debian's `supervisor`, its own
// config in a temporary folder) measured in the same run on the same machine:
//   - command latency: command inserted -> agent process running, over RUNS starts; the same for
//     `supervisorctl start` (its wall time, and invocation -> program running);
//   - restart latency: a child that crashes after a healthy run (policy always / autorestart=true),
//     its exit -> its replacement running;
//   - the runner idle: CPU (its own and its children's, e.g. ps) and RSS.
// "Running" is the moment the program itself wrote its start time (tests/fixtures/*.sh with $TIMES),
// the same clock and the same definition for both supervisors.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { execa, type ResultPromise } from 'execa';
import postgres from 'postgres';
import { stringify } from 'yaml';
import { startPostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { startStack } from '../../runner/local-stack/stack.ts';
import { isFinished } from '../../shared/status.ts';
import { percentile } from './load.ts';

const REPO = resolve(import.meta.dirname, '../..');
const FIXTURES = join(REPO, 'tests/fixtures');
const RUNS = Number(process.env.BENCH_RUNS ?? 50);
const RESTARTS = Number(process.env.BENCH_RESTARTS ?? 8);
const IDLE_SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const WARMUP_MS = 15_000;
const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux
const run$ = promisify(execFile);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The "start"/"exit" lines a fixture appended: [kind, ms, pid]. */
function times(file: string): { kind: string; ms: number; pid: number }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind, ms, pid] = line.split(' ');
      return { kind, ms: Number(ms), pid: Number(pid) };
    });
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), max: sorted.at(-1) ?? NaN, n: sorted.length };
}

const f = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime, stime, cutime, cstime (fields 14-17): the runner and the children it waited for (ps)
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return kb / 1024;
}

function supervisordConfig(dir: string, latencyTimes: string, crashTimes: string): string {
  return `[unix_http_server]
file=${dir}/supervisor.sock

[supervisord]
logfile=${dir}/supervisord.log
pidfile=${dir}/supervisord.pid
childlogdir=${dir}
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://${dir}/supervisor.sock

[program:latency]
command=${FIXTURES}/forever.sh
environment=TIMES="${latencyTimes}"
autostart=false
autorestart=false
startsecs=0
stopasgroup=true
killasgroup=true

[program:crash]
command=${FIXTURES}/exits-after.sh
environment=TIMES="${crashTimes}",RUN_SECONDS="1.5",EXIT_CODE="1"
autostart=false
autorestart=true
startsecs=1
startretries=100
stopasgroup=true
killasgroup=true
`;
}

/** Exit -> next start, for each crash in a times file. */
function restartGaps(file: string): number[] {
  const lines = times(file);
  const gaps: number[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    if (lines[i].kind === 'exit' && lines[i + 1].kind === 'start') gaps.push(lines[i + 1].ms - lines[i].ms);
  }
  return gaps;
}

// As the systemd unit in runner/README.md runs it.
const NODE_FLAGS = ['--max-semi-space-size=1'];
const ENTRIES: Record<'cli' | 'alone' | 'bundle', string> = {
  cli: join(REPO, 'runner/bin/agent-status.js'),
  // the same runner command with none of the CLI's other commands loaded (what a lazily loading CLI costs)
  alone: join(REPO, 'runner/daemon/main.ts'),
  // that, bundled into one JavaScript file run by plain node: no tsx loader thread (built in run())
  bundle: '',
};

// esbuild comes with tsx. The bundle sits in <dir>/dist beside a copy of package.json (the runner
// reads its version from ../package.json) and a link to node_modules (packages stay external).
// What a host's service runs: the bundle `npm run build:runner` makes.
async function bundleRunner(): Promise<string> {
  await run$('npm', ['run', '--silent', 'build:runner'], { cwd: REPO });
  return join(REPO, 'dist', 'agent-status-runner.mjs');
}

// Wrapped in an object: an async function returning execa's thenable would wait for the process to end.
async function startRunner(entry: string, configFile: string, token: string): Promise<{ process: ResultPromise }> {
  const args = entry.endsWith('.ts') ? ['--import', 'tsx', entry] : [entry];
  if (!entry) throw new Error('no entry to start the runner from');
  const runner = execa(process.execPath, [...NODE_FLAGS, ...args, 'runner', '--config', configFile], {
    cwd: REPO,
    env: { AGENT_STATUS_RUNNER_TOKEN: token },
    reject: false,
    all: true,
    buffer: { all: true },
  });
  let output = '';
  runner.all!.on('data', (chunk) => (output += chunk));
  await until(
    'the runner to be ready',
    () => {
      if (runner.exitCode !== null) throw new Error(`the runner exited:\n${output}`);
      return /supervising/.test(output) ? true : undefined;
    },
    30_000,
  );
  return { process: runner };
}

async function stopRunner(runner: ResultPromise): Promise<void> {
  runner.kill('SIGTERM');
  await Promise.race([runner, sleep(20_000)]);
  runner.kill('SIGKILL');
  await runner;
}

export async function run() {
  const log = (line: string) => console.log(`  ${line}`);
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-bench-runner-'));
  const cluster = await startPostgresCluster({});
  let stack: Awaited<ReturnType<typeof startStack>> | undefined;
  let runner: ResultPromise | undefined;
  let supervisord: ResultPromise | undefined;
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await admin`create database bench_runner`;
    await admin.end();
    stack = await startStack({
      port: await freePort(),
      database: { kind: 'url', url: cluster.urlFor('bench_runner') },
      functions: false,
      sweep: false,
    });
    const { sql } = stack;
    const [{ token }] = await sql`select token from public.create_api_token('runner', p_host => 'bench-host', p_new_agents => true)`;

    const files = {
      runnerLatency: join(dir, 'runner-latency.times'),
      runnerCrash: join(dir, 'runner-crash.times'),
      supervisordLatency: join(dir, 'supervisord-latency.times'),
      supervisordCrash: join(dir, 'supervisord-crash.times'),
    };
    const configFile = join(dir, 'agents.yaml');
    // Defaults everywhere (poll interval included) except what makes the bench quicker to run.
    writeFileSync(
      configFile,
      stringify({
        supabase: { url: stack.url, anon_key: stack.anonKey },
        runner: { state_dir: join(dir, 'state'), stop_agents_on_exit: true },
        agents: [
          { name: 'bench-latency', command: join(FIXTURES, 'forever.sh'), env: { TIMES: files.runnerLatency }, min_uptime: '100ms' },
          {
            name: 'bench-crash',
            command: join(FIXTURES, 'exits-after.sh'),
            restart: 'always',
            env: { TIMES: files.runnerCrash, RUN_SECONDS: '1.5', EXIT_CODE: '1' },
            // each 1.5 s run counts as stable, so every crash is "after a healthy run" (restarted at
            // once) as supervisord's autorestart does; at the default (30 s) the runner backs off
            backoff: { reset_after: '1s' },
          },
        ],
      }),
    );
    runner = (await startRunner(ENTRIES.cli, configFile, token)).process;

    const finished = (id: number) =>
      until(`command ${id}`, async () => {
        const [row] = await sql`select status, result from public.agent_commands where id = ${id}`;
        return isFinished(row.status) ? row : undefined;
      });
    const enqueue = async (action: string, agent: string) =>
      Number((await sql`select id from public.enqueue_agent_commands(${action}, ${agent})`)[0].id);

    // 1. Command latency, polling only. Commands arrive at random moments of the poll cycle (a
    // random pause first), or the loop's own rhythm would line them up with the polls.
    const runnerLatencies: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await sleep(Math.random() * 500);
      const before = times(files.runnerLatency).length;
      const t0 = Date.now();
      await enqueue('start', 'bench-latency');
      const started = await until('the agent to run', () => times(files.runnerLatency)[before]);
      runnerLatencies.push(started.ms - t0);
      await finished(await enqueue('stop', 'bench-latency'));
    }
    log(`runner: ${RUNS} starts measured`);

    // 2. The same under supervisord.
    writeFileSync(join(dir, 'supervisord.conf'), supervisordConfig(dir, files.supervisordLatency, files.supervisordCrash));
    supervisord = execa('supervisord', ['-c', join(dir, 'supervisord.conf')], { reject: false, stdio: 'ignore' });
    await until('supervisord to listen', () => (existsSync(join(dir, 'supervisor.sock')) ? true : undefined));
    const ctl = (...args: string[]) => run$('supervisorctl', ['-c', join(dir, 'supervisord.conf'), ...args]);
    await until('supervisorctl to answer', async () =>
      (await ctl('status').catch((e) => e)).stdout?.includes('latency') ? true : undefined,
    );
    const ctlWall: number[] = [];
    const ctlRunning: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await sleep(Math.random() * 100);
      const before = times(files.supervisordLatency).length;
      const t0 = Date.now();
      await ctl('start', 'latency');
      ctlWall.push(Date.now() - t0);
      const started = await until('the program to run', () => times(files.supervisordLatency)[before]);
      ctlRunning.push(started.ms - t0);
      await ctl('stop', 'latency');
    }
    log(`supervisord: ${RUNS} starts measured`);

    // 3. Restart of a crashed child: exit -> next start, both supervisors.
    await finished(await enqueue('start', 'bench-crash'));
    await until('runner restarts', () => (restartGaps(files.runnerCrash).length >= RESTARTS ? true : undefined), (RESTARTS + 3) * 2500);
    await finished(await enqueue('stop', 'bench-crash'));
    await ctl('start', 'crash');
    await until(
      'supervisord restarts',
      () => (restartGaps(files.supervisordCrash).length >= RESTARTS ? true : undefined),
      (RESTARTS + 3) * 4000,
    );
    await ctl('stop', 'crash');
    log(`restarts measured`);

    // 4. The runner idle: one agent running, no commands; as the CLI runs it, alone, bundled.
    ENTRIES.bundle = await bundleRunner();
    const idle: Record<string, { cpu: number; rss: number }> = {};
    for (const [label, entry] of Object.entries(ENTRIES)) {
      runner ??= (await startRunner(entry, configFile, token)).process;
      await finished(await enqueue('start', 'bench-latency'));
      // past start-up and the JIT's first compilations of the poll path: the steady state is the cost
      await sleep(WARMUP_MS);
      const pid = runner.pid!;
      const ticks0 = cpuTicks(pid);
      const at0 = Date.now();
      await sleep(IDLE_SECONDS * 1000);
      idle[label] = {
        cpu: ((cpuTicks(pid) - ticks0) / CLOCK_TICKS / ((Date.now() - at0) / 1000)) * 100,
        rss: rssMb(pid),
      };
      // stop_agents_on_exit: the agent ends with the runner
      await stopRunner(runner);
      runner = undefined;
    }

    const r = summary(runnerLatencies);
    const w = summary(ctlWall);
    const s = summary(ctlRunning);
    const rr = summary(restartGaps(files.runnerCrash));
    const sr = summary(restartGaps(files.supervisordCrash));
    console.log('');
    console.log('command latency (ms)                          p50    p95    max   runs');
    console.log(
      `runner, polling only: insert -> running   ${f(r.p50).padStart(6)} ${f(r.p95).padStart(6)} ${f(r.max).padStart(6)} ${String(r.n).padStart(6)}`,
    );
    console.log(
      `supervisorctl start: wall time            ${f(w.p50).padStart(6)} ${f(w.p95).padStart(6)} ${f(w.max).padStart(6)} ${String(w.n).padStart(6)}`,
    );
    console.log(
      `supervisorctl start: invoked -> running   ${f(s.p50).padStart(6)} ${f(s.p95).padStart(6)} ${f(s.max).padStart(6)} ${String(s.n).padStart(6)}`,
    );
    console.log('');
    console.log('crashed child restarted (ms, exit -> running)  p50    p95    max   restarts');
    console.log(
      `runner, restart: always                   ${f(rr.p50).padStart(6)} ${f(rr.p95).padStart(6)} ${f(rr.max).padStart(6)} ${String(rr.n).padStart(6)}`,
    );
    console.log(
      `supervisord, autorestart=true             ${f(sr.p50).padStart(6)} ${f(sr.p95).padStart(6)} ${f(sr.max).padStart(6)} ${String(sr.n).padStart(6)}`,
    );
    console.log('');
    console.log(`runner idle over ${IDLE_SECONDS} s, one agent running, polling every 250 ms, node ${NODE_FLAGS.join(' ')}:`);
    console.log(`  agent-status runner (the CLI):        CPU ${idle.cli.cpu.toFixed(2)}% of a core, RSS ${idle.cli.rss.toFixed(0)} MB`);
    console.log(`  the runner command alone:             CPU ${idle.alone.cpu.toFixed(2)}% of a core, RSS ${idle.alone.rss.toFixed(0)} MB`);
    console.log(
      `  alone, bundled (esbuild), plain node: CPU ${idle.bundle.cpu.toFixed(2)}% of a core, RSS ${idle.bundle.rss.toFixed(0)} MB`,
    );
    const { cpu, rss } = idle.cli;
    console.log('');
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(`p50 no slower than supervisorctl start (${f(r.p50)} vs ${f(w.p50)} ms): ${verdict(r.p50 <= w.p50)}`);
    console.log(`p95 under twice supervisorctl start's p50 (${f(r.p95)} vs ${f(2 * w.p50)} ms): ${verdict(r.p95 < 2 * w.p50)}`);
    console.log(`crashed child restarted within 100 ms (p95 ${f(rr.p95)} ms): ${verdict(rr.p95 <= 100)}`);
    console.log(
      `idle below 1% of a core and 80 MB RSS, as the CLI runs it (${cpu.toFixed(2)}%, ${rss.toFixed(0)} MB): ${verdict(cpu < 1 && rss < 80)}`,
    );
    console.log(
      `idle below 1% of a core and 80 MB RSS, bundled (${idle.bundle.cpu.toFixed(2)}%, ${idle.bundle.rss.toFixed(0)} MB): ${verdict(idle.bundle.cpu < 1 && idle.bundle.rss < 80)}`,
    );
  } finally {
    if (runner) await stopRunner(runner);
    if (supervisord) {
      supervisord.kill('SIGTERM');
      await Promise.race([supervisord, sleep(10_000)]);
    }
    await stack?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
