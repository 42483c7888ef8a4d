// Dashboard bench: 2,000 agents in a real stack (private PostgreSQL, PostgREST, auth stand-in), the
// production build in headless Chromium. Measures (1) opening the dashboard until the table of all
// 2,000 agents is rendered and painted (it renders the rows in view), and (2) applying a poll in
// which one agent on screen changed, up to the next paint.
// The page reports both itself through User Timing (web/src/dashboard.ts MARKS).
// Run alone: BENCH=dashboard npm run bench
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack } from '../../runner/local-stack/stack.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { MARKS } from '../../web/src/dashboard.ts';
import { buildDashboard, launchChromium, removeDir, serveDashboard, signIn } from '../web/helpers.ts';

export interface Measurement {
  name: string;
  value: number;
  unit: 'ms';
  target: number;
}

const AGENTS = 2000;
const UPDATES = 10;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

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
  try {
    // A fleet in every status, on 20 hosts, as written by agents over the last hour.
    await stack.sql`
      insert into public.agent_status (agent_name, status, status_source, health, host, last_heartbeat, started_at,
                                       stale_at, last_activity, last_activity_at, status_reason)
      select format('agent-%s', lpad(i::text, 4, '0')),
             (array['running', 'running', 'running', 'warning', 'error', 'stopped'])[1 + i % 6], 'agent',
             (i * 37) % 101, format('host-%s', i % 20), now() - make_interval(secs => i % 50),
             now() - make_interval(mins => i % 600), now() + interval '1 hour',
             format('processed batch %s', i), now() - make_interval(secs => i % 90),
             case when i % 6 in (3, 4) then 'upstream API answered 503' end
      from generate_series(1, ${AGENTS}) i`;
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
      if (rowCount !== String(AGENTS + 1) || inDom < 10) {
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
    log(
      `dashboard: open with ${AGENTS} agents ${opens.map((v) => v.toFixed(0)).join(', ')} ms; ` +
        `one-row update to paint ${updates.map((v) => v.toFixed(1)).join(', ')} ms, script only ${scripts.map((v) => v.toFixed(1)).join(', ')} ms ` +
        `(load average ${loadavg()[0].toFixed(2)} on this machine)`,
    );
    return [
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
    ];
  } finally {
    await browser?.close();
    await served?.close();
    removeDir(dir);
    await stack.stop();
    removeDir(dataDir);
  }
}

/** The bench runner's entry (tests/bench/run.ts). */
export async function run(): Promise<void> {
  for (const r of await benchDashboard()) {
    console.log(`${r.value <= r.target ? 'ok  ' : 'SLOW'} ${r.name}: ${r.value.toFixed(1)} ${r.unit} (target < ${r.target} ${r.unit})`);
  }
}
