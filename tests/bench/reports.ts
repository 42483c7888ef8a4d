// Reports of agents that end together (issue 22): BENCH_REPORT_AGENTS (default 20) agents under one
// runner are killed at once, ROUNDS times. Counted: the runner's report calls (through a counting
// proxy) against the crashes recorded, and the time from the kill until every row reads error. The
// baseline in the same run: the same number of crash reports sent as the runner sent them before
// runner_report_batch (one agent_report call per report, each agent's side by side on the runner's 4
// keep-alive connections) against the Reporter's group commit, timed from the first send to the
// last answer; and a lone report both ways (a crash alone must not wait longer than it did).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { stringify } from 'yaml';
import { RunnerApi } from '../../runner/daemon/api.ts';
import { parseConfig } from '../../runner/daemon/config.ts';
import { Reporter } from '../../runner/daemon/reporter.ts';
import { Runner } from '../../runner/daemon/runner.ts';
import { startPostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { startStack } from '../../runner/local-stack/stack.ts';
import { countingProxy } from '../helpers/counting-proxy.ts';

const REPO = resolve(import.meta.dirname, '../..');
const AGENTS = Number(process.env.BENCH_REPORT_AGENTS ?? 20);
const ROUNDS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

type Stack = Awaited<ReturnType<typeof startStack>>;

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await probe()); await sleep(5)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

// The real runner: its agents killed together; calls and time until the database has every crash.
async function burst(stack: Stack, dir: string): Promise<{ calls: number[]; reports: number[]; ms: number[] }> {
  const host = 'bench-burst';
  const [{ token }] = await stack.sql`select token from public.create_api_token('runner', p_host => ${host}, p_new_agents => true)`;
  const proxy = await countingProxy(stack.url);
  const names = Array.from({ length: AGENTS }, (_, i) => `burst-${i + 1}`);
  const configFile = join(dir, 'burst.yaml');
  writeFileSync(
    configFile,
    stringify({
      supabase: { url: proxy.url, anon_key: stack.anonKey },
      runner: { state_dir: join(dir, 'burst'), heartbeat_interval: '30s', poll_interval: '100ms' },
      agents: names.map((name) => ({ name, command: join(REPO, 'tests/fixtures/forever.sh'), restart: 'never', min_uptime: '300ms' })),
    }),
  );
  const runner = await Runner.start({
    config: parseConfig(readFileSync(configFile, 'utf8'), configFile, { env: { AGENT_STATUS_RUNNER_TOKEN: token } }),
    log: () => {},
  });
  const rows = () => stack.sql`select status, pid from public.agent_status where agent_name in ${stack.sql(names)}`;
  const crashes = async () =>
    Number(
      (
        await stack.sql`select count(*) as n from public.agent_events e join public.agent_status a on a.id = e.agent_id
                       where a.agent_name in ${stack.sql(names)} and e.kind = 'crashed'`
      )[0].n,
    );
  const result = { calls: [] as number[], reports: [] as number[], ms: [] as number[] };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      await stack.sql`select public.enqueue_agent_commands('start', p_host => ${host})`;
      await until('every agent to run', async () => (await rows()).every((row) => row.status === 'running' && row.pid));
      // the started reports are in; give the runner a moment to have nothing in flight
      await sleep(1000);
      const pids = (await rows()).map((row) => row.pid as number);
      const before = await crashes();
      const from = proxy.calls.length;
      const killedAt = performance.now();
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await until('every crash to be recorded', async () => (await rows()).every((row) => row.status === 'error'));
      result.ms.push(performance.now() - killedAt);
      result.calls.push(proxy.calls.slice(from).filter((call) => call === 'runner_report_batch' || call === 'agent_report').length);
      result.reports.push((await crashes()) - before);
    }
  } finally {
    await runner.shutdown({ stopAgents: true });
    await proxy.stop();
  }
  return result;
}

// The same crash reports, one call each as before (side by side, per agent) and through the Reporter.
async function sendBoth(
  stack: Stack,
): Promise<{ single: number[]; batched: number[]; batchedCalls: number[]; loneSingle: number[]; loneBatched: number[] }> {
  const host = 'bench-reports';
  const [{ token }] = await stack.sql`select token from public.create_api_token('runner', p_host => ${host}, p_new_agents => true)`;
  const names = Array.from({ length: AGENTS }, (_, i) => `reports-${i + 1}`);
  const api = new RunnerApi({ url: stack.url, anonKey: stack.anonKey, token });
  const instance = randomUUID();
  await api.lease(instance, process.pid, false);
  await api.register(
    names.map((name) => ({ name })),
    'bench',
    process.pid,
    instance,
  );
  const starts = (pid: number) => api.reportBatch(names.map((name) => ({ agent_name: name, event: 'started' as const, pid })));
  const result = {
    single: [] as number[],
    batched: [] as number[],
    batchedCalls: [] as number[],
    loneSingle: [] as number[],
    loneBatched: [] as number[],
  };
  // a lone report (nothing else queued): its own agent_report call, or a batch of one through the Reporter
  const lone = new Reporter(
    (reports) => api.reportBatch(reports),
    () => {},
  );
  for (const [i, name] of names.entries()) {
    let at = performance.now();
    await api.client.rpc('agent_report', {
      p_token: token,
      p_agent_name: name,
      p_event: 'started',
      p_pid: 100 + i,
      p_report_id: randomUUID(),
    });
    result.loneSingle.push(performance.now() - at);
    at = performance.now();
    lone.report(name, { event: 'stable', pid: 100 + i });
    await lone.flush(10_000);
    result.loneBatched.push(performance.now() - at);
  }
  lone.close();
  for (let round = 0; round < ROUNDS; round++) {
    await starts(1000 + round);
    let at = performance.now();
    await Promise.all(
      names.map((name) =>
        api.client.rpc('agent_report', {
          p_token: token,
          p_agent_name: name,
          p_event: 'crashed',
          p_exit_code: 9,
          p_report_id: randomUUID(),
        }),
      ),
    );
    result.single.push(performance.now() - at);

    await starts(2000 + round);
    let calls = 0;
    const reporter = new Reporter(
      (reports) => {
        calls++;
        return api.reportBatch(reports);
      },
      () => {},
    );
    at = performance.now();
    for (const name of names) reporter.report(name, { event: 'crashed', exitCode: 9 });
    await reporter.flush(30_000);
    result.batched.push(performance.now() - at);
    result.batchedCalls.push(calls);
    reporter.close();
  }
  return result;
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-bench-reports-'));
  const cluster = await startPostgresCluster({});
  let stack: Stack | undefined;
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await admin`create database bench_reports`;
    await admin.end();
    stack = await startStack({
      port: await freePort(),
      database: { kind: 'url', url: cluster.urlFor('bench_reports') },
      functions: false,
      sweep: false,
      alerts: false,
    });
    const both = await sendBoth(stack);
    const real = await burst(stack, dir);
    const ms = (values: number[]) => `${median(values).toFixed(0)} ms (${values.map((v) => v.toFixed(0)).join(', ')})`;
    console.log(`\n${AGENTS} crash reports at once, ${ROUNDS} rounds, median (each round):`);
    console.log(`  one agent_report call each (before)      ${String(AGENTS).padStart(3)} calls   ${ms(both.single)}`);
    console.log(`  Reporter, runner_report_batch (now)      ${String(median(both.batchedCalls)).padStart(3)} calls   ${ms(both.batched)}`);
    console.log(`\na lone report, median of ${AGENTS} (each alternately):`);
    console.log(`  its own agent_report call (before)                 ${ms(both.loneSingle).split(' (')[0]}`);
    console.log(`  Reporter, a runner_report_batch of one (now)       ${ms(both.loneBatched).split(' (')[0]}`);
    console.log(`\n${AGENTS} agents under one runner killed at once (SIGKILL), until every row reads error:`);
    console.log(`  the runner: ${real.reports.join(', ')} crashes recorded in ${real.calls.join(', ')} report calls; ${ms(real.ms)}`);
  } finally {
    await stack?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
