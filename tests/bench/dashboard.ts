// Dashboard bench: BENCH_AGENTS agents (2,000 by default) in a real stack (private PostgreSQL,
// PostgREST, auth stand-in), the production build in headless Chromium. Measures (1) opening the
// dashboard until the table of all agents is rendered and painted (it renders the rows in view), and (2) applying a poll in
// which one agent on screen changed, up to the next paint, with every column filled (CPU and memory
// too); and (3) logs on demand: from the operator's click to the lines on screen, through a real
// runner reading a real agent's files (p50 and p95).
// The page reports them itself through User Timing (web/src/marks.ts). Beside them, through PostgREST
// as the signed-in operator: the read the first screen waits for (public.dashboard_agent_page, the
// rows in view and the counts), and as the baseline, the read the dashboard made before it (every
// agent of agent_status_live, in keyset pages of 1,000). And the database time of a poll: the whole
// pass, beside a poll that sends back the last answer's mark while nothing changed (answered unchanged).
// Run alone: BENCH=dashboard npm run bench; another fleet size: BENCH_AGENTS=10000 BENCH=dashboard npm run bench
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createClient } from '@supabase/supabase-js';
import type { JSONValue, Sql } from 'postgres';
import WebSocket from 'ws';
import { stringify } from 'yaml';
import { parseConfig } from '../../runner/daemon/config.ts';
import { Runner } from '../../runner/daemon/runner.ts';
import { MARKS } from '../../web/src/marks.ts';
import { startStack } from '../../runner/local-stack/stack.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { buildDashboard, launchChromium, removeDir, serveDashboard, signIn } from '../web/helpers.ts';

export interface Measurement {
  name: string;
  value: number;
  unit: 'ms';
  target: number;
}

const AGENTS = Number(process.env.BENCH_AGENTS ?? 2000);
if (!Number.isInteger(AGENTS) || AGENTS < 20)
  throw new Error(`BENCH_AGENTS must be a whole number of at least 20, got ${process.env.BENCH_AGENTS}`);
// agent-0001 ... sorted as numbered; wide enough that no two names collide (lpad cuts longer numbers)
const NAME_DIGITS = Math.max(4, String(AGENTS).length);
const UPDATES = 10;
const LOG_REQUESTS = 20;
const CHATTY = resolve(import.meta.dirname, '../fixtures/chatty.sh');

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

const median = (values: number[]) => percentile(values, 0.5);

/** Runs the dashboard bench; returns its measurements (lower is better). */
export async function benchDashboard(log: (line: string) => void = console.log): Promise<Measurement[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'agent-status-bench-web-'));
  const operator = { email: 'bench@agent-status.test', password: 'bench-password' };
  const stack = await startStack({
    port: await freePort(),
    database: { kind: 'postgres', dataDir, port: await freePort() },
    functions: false,
    sweep: false,
    operator,
  });
  let dir: string | undefined;
  let served: Awaited<ReturnType<typeof serveDashboard>> | undefined;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  let runner: Runner | undefined;
  try {
    // A fleet in every status, on 20 hosts, as written by agents over the last hour.
    await stack.sql`
      insert into public.agent_status (agent_name, status, status_source, health, host, last_heartbeat, started_at,
                                       stale_at, last_activity, last_activity_at, status_reason)
      select format('agent-%s', lpad(i::text, ${NAME_DIGITS}, '0')),
             (array['running', 'running', 'running', 'warning', 'error', 'stopped'])[1 + i % 6], 'agent',
             (i * 37) % 101, format('host-%s', i % 20), now() - make_interval(secs => i % 50),
             now() - make_interval(mins => i % 600), now() + interval '1 hour',
             format('processed batch %s', i), now() - make_interval(secs => i % 90),
             case when i % 6 in (3, 4) then 'upstream API answered 503' end
      from generate_series(1, ${AGENTS}) i`;
    // CPU and memory for every agent that runs, as runners send them
    await stack.sql`
      insert into public.agent_resources (agent_id, cpu_percent, memory_bytes, processes)
      select id, (id * 7) % 100, (40 + id % 400) * 1048576, 1 + id % 3 from public.agent_status`;
    // Before any runner writes: a quiet fleet, as the unchanged polls need.
    const polls = await measurePolls(stack.sql, operator.email);
    // One real runner on its own host, supervising an agent that prints a line every 200 ms.
    const [{ token }] =
      await stack.sql`select token from public.create_api_token('runner', p_host => 'bench-logs-host', p_agents => ${['agent-logs']})`;
    const config = stringify({
      supabase: { url: stack.url, anon_key: stack.anonKey },
      runner: { state_dir: join(dataDir, 'runner'), stop_agents_on_exit: true },
      agents: [{ name: 'agent-logs', command: CHATTY, autostart: true }],
    });
    runner = await Runner.start({
      config: parseConfig(config, join(dataDir, 'agents.yaml'), { env: { AGENT_STATUS_RUNNER_TOKEN: token } }),
      log: () => {},
    });
    const reads = await measureReads(stack.url, stack.anonKey, operator);
    dir = await buildDashboard();
    served = await serveDashboard(dir, { supabaseUrl: stack.url, supabaseAnonKey: stack.anonKey });
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    const rendered = () =>
      page.waitForFunction((mark) => performance.getEntriesByName(mark).length > 0, MARKS.firstRender, { timeout: 60_000 });

    await signIn(page, served.url, operator);
    await rendered();
    // Opening the dashboard with a session, as an operator does every day: navigation to painted rows.
    const opens: number[] = [];
    for (let i = 0; i < 3; i++) {
      await page.reload();
      await rendered();
      // The table renders the rows in view (and a margin) and sizes itself for all of them.
      const rowCount = await page.locator('[role="table"]').getAttribute('aria-rowcount');
      const inDom = await page.locator('.rows .row').count();
      // (the fleet, the runner's agent-logs, and the header row)
      if (rowCount !== String(AGENTS + 2) || inDom < 10) {
        throw new Error(`expected a table of ${AGENTS} agents with its first rows rendered, the page shows ${inDom} rows of ${rowCount}`);
      }
      opens.push(await page.evaluate((mark) => performance.getEntriesByName(mark)[0].startTime, MARKS.firstRender));
    }

    const updates: number[] = [];
    const scripts: number[] = [];
    for (let i = 0; i < UPDATES; i++) {
      // A row on screen, so the change has something to paint.
      const name = (await page
        .locator('.rows .row')
        .nth(2 + i)
        .getAttribute('data-agent'))!;
      const before = await page.evaluate((mark) => performance.getEntriesByName(mark).length, MARKS.apply);
      const health = (Number(await page.locator(`.rows [data-agent="${name}"] .num`).textContent()) + 50) % 101;
      // updated_at as every write of the SQL API sets it: the page reads only rows written since its last read
      await stack.sql`update public.agent_status set health = ${health}, status_reason = 'bench', updated_at = now() where agent_name = ${name}`;
      await page.waitForFunction(
        ([agent, value]) => document.querySelector(`.rows [data-agent="${agent}"] .num`)?.textContent === value,
        [name, String(health)] as const,
        { timeout: 15_000 },
      );
      await page.waitForFunction(([mark, count]) => performance.getEntriesByName(mark).length > count, [MARKS.apply, before] as const);
      // Every poll applied since the change, the one carrying it included: the slowest counts.
      const durations = (mark: string) =>
        page.evaluate(
          ([m, count]) =>
            performance
              .getEntriesByName(m)
              .slice(count)
              .map((e) => e.duration),
          [mark, before] as const,
        );
      updates.push(Math.max(...(await durations(MARKS.apply))));
      scripts.push(Math.max(...(await durations(MARKS.applyScript))));
    }
    // Logs on demand: the agent's page, "Show logs" (then "Refresh"), until the lines are on screen.
    await page.goto(`${served.url}#/agents/agent-logs`);
    const ask = page.locator('.logs-tools button');
    await ask.waitFor();
    const logs: number[] = [];
    for (let i = 0; i < LOG_REQUESTS + 1; i++) {
      const before = await page.evaluate((mark) => performance.getEntriesByName(mark).length, MARKS.logs);
      await ask.click();
      await page.waitForFunction(([mark, count]) => performance.getEntriesByName(mark).length > count, [MARKS.logs, before] as const, {
        timeout: 15_000,
      });
      const shown = await page.locator('pre.log.stdout').textContent();
      if (!/chatty: line \d+/.test(shown ?? '')) throw new Error(`the logs shown are not the agent's: ${shown}`);
      // the first one also warms the runner's and the page's connections
      if (i > 0) logs.push(await page.evaluate((mark) => performance.getEntriesByName(mark).at(-1)!.duration, MARKS.logs));
    }
    log(`dashboard: log request to lines shown ${logs.map((v) => v.toFixed(0)).join(', ')} ms`);

    log(
      `dashboard: API read for the first screen (dashboard_agent_page) ${reads.page.map((v) => v.toFixed(0)).join(', ')} ms; ` +
        `baseline, every agent in keyset pages of 1,000 (the read before) ${reads.every.map((v) => v.toFixed(0)).join(', ')} ms`,
    );
    log(
      `dashboard: database time of a poll as the operator (direct SQL, rows in view + counts) ${polls.full.map((v) => v.toFixed(0)).join(', ')} ms; ` +
        `of a poll with the last answer's mark while nothing changed ${polls.unchanged.map((v) => v.toFixed(1)).join(', ')} ms`,
    );
    log(
      `dashboard: open with ${AGENTS} agents ${opens.map((v) => v.toFixed(0)).join(', ')} ms; ` +
        `one-row update to paint ${updates.map((v) => v.toFixed(1)).join(', ')} ms, script only ${scripts.map((v) => v.toFixed(1)).join(', ')} ms ` +
        `(load average ${loadavg()[0].toFixed(2)} on this machine)`,
    );
    return [
      {
        name: `API read of the first screen (rows in view + counts), ${AGENTS} agents (median of ${reads.page.length})`,
        value: median(reads.page),
        unit: 'ms',
        target: 1000,
      },
      {
        name: `baseline: API read of every agent in keyset pages of 1,000, ${AGENTS} agents (median of ${reads.every.length})`,
        value: median(reads.every),
        unit: 'ms',
        target: 1000,
      },
      {
        name: `database time of a poll, the whole-fleet pass (rows in view + counts), ${AGENTS} agents (median of ${polls.full.length})`,
        value: median(polls.full),
        unit: 'ms',
        target: 1000,
      },
      {
        name: `database time of a poll answered unchanged (its mark still holds), ${AGENTS} agents (median of ${polls.unchanged.length})`,
        value: median(polls.unchanged),
        unit: 'ms',
        target: 100,
      },
      {
        name: `dashboard first complete render, ${AGENTS} agents (median of ${opens.length})`,
        value: median(opens),
        unit: 'ms',
        target: 1000,
      },
      {
        name: `dashboard one-row update to next paint, ${AGENTS} agents (median of ${UPDATES})`,
        value: median(updates),
        unit: 'ms',
        target: 50,
      },
      {
        name: `dashboard one-row update, script only, ${AGENTS} agents (median of ${UPDATES})`,
        value: median(scripts),
        unit: 'ms',
        target: 50,
      },
      // the runner claims log requests every 500 ms: the wait for it dominates
      { name: `logs on demand, request to lines shown, p50 of ${LOG_REQUESTS}`, value: median(logs), unit: 'ms', target: 2000 },
      { name: `logs on demand, request to lines shown, p95 of ${LOG_REQUESTS}`, value: percentile(logs, 0.95), unit: 'ms', target: 2000 },
    ];
  } finally {
    await runner?.shutdown({ stopAgents: true });
    await browser?.close();
    await served?.close();
    removeDir(dir);
    await stack.stop();
    removeDir(dataDir);
  }
}

/**
 * Database time of the dashboard's poll as the signed-in operator (direct SQL, as PostgREST runs it:
 * role authenticated, its claims): the whole-fleet pass, and a poll sending that answer's mark while
 * nothing changed, 10 times each, alternating.
 */
async function measurePolls(sql: Sql, email: string) {
  const [user] = await sql`select id from local_auth.users where lower(email) = lower(${email})`;
  const claims = JSON.stringify({ role: 'authenticated', sub: user.id, email });
  const poll = (since: unknown) =>
    sql.begin(async (tx) => {
      await tx`select set_config('request.jwt.claims', ${claims}, true)`;
      await tx.unsafe('set local role authenticated');
      const started = performance.now();
      const [{ page }] =
        await tx`select public.dashboard_agent_page(p_limit => 100, p_since => ${since ? tx.json(since as JSONValue) : null}::jsonb) as page`;
      return { ms: performance.now() - started, page: page as { total: number; unchanged?: true; mark: unknown } };
    });
  const polls = { full: [] as number[], unchanged: [] as number[] };
  // the first of each warms the caches and sets the hint bits of the rows just written
  for (let i = 0; i < 11; i++) {
    const full = await poll(null);
    if (full.page.total < AGENTS || full.page.unchanged) throw new Error(`dashboard_agent_page counted ${full.page.total} agents`);
    const unchanged = await poll(full.page.mark);
    if (!unchanged.page.unchanged) throw new Error('dashboard_agent_page ran the whole pass for a poll of a fleet nobody wrote to');
    if (i === 0) continue;
    polls.full.push(full.ms);
    polls.unchanged.push(unchanged.ms);
  }
  return polls;
}

/** Times the first screen's read and, as the baseline, reading every agent, 3 times each, alternating. */
async function measureReads(url: string, anonKey: string, operator: { email: string; password: string }) {
  const client = createClient(url, anonKey, { realtime: { transport: WebSocket as never }, auth: { persistSession: false } });
  const { error } = await client.auth.signInWithPassword(operator);
  if (error) throw new Error(`the bench cannot sign in as ${operator.email}: ${error.message}`);
  const timed = async (read: () => Promise<unknown>) => {
    const started = performance.now();
    await read();
    return performance.now() - started;
  };
  const page = async () => {
    const { data, error } = await client.rpc('dashboard_agent_page', { p_offset: 0, p_limit: 60 });
    if (error) throw new Error(`dashboard_agent_page: ${error.message}`);
    if ((data as { total: number }).total < AGENTS)
      throw new Error(`dashboard_agent_page counted ${(data as { total: number }).total} agents`);
  };
  const every = async () => {
    let count = 0;
    for (let after = 0; ; ) {
      const { data, error } = await client.from('agent_status_live').select('*').gt('id', after).order('id').limit(1000);
      if (error) throw new Error(`agent_status_live: ${error.message}`);
      count += data.length;
      if (data.length < 1000) break;
      after = data[data.length - 1].id;
    }
    if (count < AGENTS) throw new Error(`read ${count} agents of ${AGENTS}`);
  };
  const reads = { page: [] as number[], every: [] as number[] };
  // the baseline once past 20,000 agents: each full read takes tens of seconds there
  for (let i = 0; i < 3; i++) {
    reads.page.push(await timed(page));
    if (i === 0 || AGENTS <= 20_000) reads.every.push(await timed(every));
  }
  await client.auth.signOut();
  return reads;
}

/** The bench runner's entry (tests/bench/run.ts). */
export async function run(): Promise<void> {
  for (const r of await benchDashboard()) {
    console.log(`${r.value <= r.target ? 'ok  ' : 'SLOW'} ${r.name}: ${r.value.toFixed(1)} ${r.unit} (target < ${r.target} ${r.unit})`);
  }
}
