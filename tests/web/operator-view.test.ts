// What an operator trusts at a glance (issue 15), end to end: the production build in headless
// Chromium against a real stack and real runners supervising real processes. Rows that cannot
// mislead, CPU and memory, availability, folded history, logs on demand, hosts, dark mode, the URL
// and the shortcuts; every figure on screen is checked against the database.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { useTestStack } from '../helpers/stack.ts';
import { agentProcesses, fixtureAgent, makeHost } from '../runner/host.ts';
import {
  buildDashboard,
  launchChromium,
  removeDir,
  screenshot,
  serveDashboard,
  signIn,
  watchConsole,
  type ServedDashboard,
} from './helpers.ts';

const stack = useTestStack();
let dir: string | undefined;
let served: ServedDashboard | undefined;
let browser: Browser | undefined;
let context: BrowserContext;
let page: Page;
let logs: string[];

beforeAll(async () => {
  dir = await buildDashboard();
  served = await serveDashboard(dir, { supabaseUrl: stack.url, supabaseAnonKey: stack.anonKey });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await served?.close();
  removeDir(dir);
});

beforeEach(async ({ onTestFailed }) => {
  context = await browser!.newContext({ viewport: { width: 1360, height: 860 } });
  page = await context.newPage();
  logs = watchConsole(page);
  onTestFailed(() => console.log(`browser output:\n${logs.join('\n') || '(none)'}`));
});

afterEach(async () => {
  await context?.close();
});

const sql = () => stack.db.sql;
const row = (name: string) => page.locator(`.rows [data-agent="${name}"]`);
const cell = (name: string, column: string) => row(name).locator(`.c-${column}`);

async function openDashboard(hash = '') {
  await signIn(page, served!.url + hash, stack.operator);
  await page.locator('.live').waitFor();
}

async function statusShown(name: string, status: string, timeout = 15_000) {
  await expect.poll(() => row(name).locator('.chip').textContent(), { timeout, interval: 100 }).toContain(status);
}

/** Megabytes in a memory cell ("143 MB", "1.2 GB"). */
function megabytes(text: string | null): number {
  const match = /^([\d.]+) (KB|MB|GB)$/.exec(text ?? '');
  if (!match) return 0;
  return Number(match[1]) * { KB: 1 / 1024, MB: 1, GB: 1024 }[match[2] as 'KB' | 'MB' | 'GB'];
}

describe('rows that cannot mislead', () => {
  it('a dead agent’s uptime stops: its row says down (or exited) instead, and its bar is not green', async () => {
    const agent = fixtureAgent('forever.sh', { autostart: true, restart: 'never' });
    await (await makeHost(stack, [agent])).start();
    await openDashboard();
    await statusShown(agent.name, 'running');
    await expect.poll(() => cell(agent.name, 'uptime').textContent()).toMatch(/^\d+ s$/);
    expect(await row(agent.name).locator('.fill').getAttribute('class')).toBe('fill fill-running');

    const [pid] = agentProcesses(agent.name);
    process.kill(-pid, 'SIGKILL');
    await statusShown(agent.name, 'error');
    await expect.poll(() => cell(agent.name, 'uptime').textContent()).toMatch(/^down \d+ s$/);
    expect(await row(agent.name).locator('.fill').getAttribute('class')).toBe('fill fill-error');
    expect(await cell(agent.name, 'cpu').textContent()).toBe('–');
  }, 60_000);

  it('a crash-looping agent shows its restart count and the crash-loop badge, and never a green bar', async () => {
    const agent = fixtureAgent('crashes.sh', {
      name: 'Crash Looper',
      autostart: true,
      restart: 'always',
      backoff: { initial: '200ms', max: '1s', max_retries: 1000 },
    });
    await (await makeHost(stack, [agent])).start();
    await openDashboard();
    const badge = row('Crash Looper').locator('.badge-crash');
    await expect.poll(() => badge.isVisible(), { timeout: 20_000 }).toBe(true);
    await expect
      .poll(async () => Number(/\d+/.exec((await cell('Crash Looper', 'uptime').locator('.restarts').textContent()) ?? '')?.[0]), {
        timeout: 20_000,
      })
      .toBeGreaterThanOrEqual(3);
    // sampled as the page repaints: between crashes the agent briefly runs, and still it is not "fine"
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      seen.add((await row('Crash Looper').locator('.fill').getAttribute('class')) ?? '');
      seen.add((await row('Crash Looper').locator('.chip').textContent()) ?? '');
      await page.waitForTimeout(100);
    }
    expect([...seen]).not.toContain('fill fill-running');
    expect([...seen].some((text) => text.includes('running'))).toBe(false);
    const [live] = await sql()`select restarts_total, crash_looping from public.agent_status_live where agent_name = 'Crash Looper'`;
    expect(live.crash_looping).toBe(true);
    expect(await cell('Crash Looper', 'uptime').locator('.restarts').textContent()).toMatch(/^↻ \d+ restarts$/);
    await screenshot(page, 'dashboard-crash-loop', { fullPage: false });
  }, 60_000);

  it('a killed runner’s agents say so on their rows within two of its heartbeat intervals', async () => {
    const agent = fixtureAgent('forever.sh', { name: 'Orphan Agent', autostart: true });
    const host = await makeHost(stack, [agent], { heartbeat_interval: '2s' });
    const runner = await host.spawn();
    await openDashboard();
    await statusShown('Orphan Agent', 'running');
    // its first heartbeat tells the database its interval (until then it is judged by the default)
    await expect
      .poll(async () => (await sql()`select heartbeat_interval_s from public.runners where host = ${host.host}`)[0].heartbeat_interval_s, {
        timeout: 10_000,
      })
      .toBe(2);
    const [{ pid }] = await sql()`select pid from public.agent_status where agent_name = 'Orphan Agent'`;
    runner.process.kill('SIGKILL');
    try {
      // two intervals (4 s), plus one poll of the page (2.5 s)
      await expect
        .poll(() => cell('Orphan Agent', 'host').locator('.note').textContent(), { timeout: 7_000, interval: 200 })
        .toMatch(/^runner silent \d+ s$/);
      await page.goto(`${served!.url}#/hosts`);
      await expect.poll(() => page.locator(`.hosts tr[data-host="${host.host}"] .host-status`).textContent()).toMatch(/^silent for \d+ s$/);
    } finally {
      // the agent outlives its killed runner, as agents do (KillMode=process): the test ends it
      try {
        if (pid > 0) process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 60_000);
});

describe('latest problem and settings', () => {
  it('keeps the latest error with its age on the row after recovery; timeouts are set on the agent’s page and recorded', async () => {
    const [{ token }] = await sql()`select token from public.create_api_token('agent', p_agent_name => 'Recovered Agent')`;
    const report = (event: string, message: string | null = null) =>
      sql()`select public.agent_report(${token}, 'Recovered Agent', ${event}, ${message})`;
    await report('started');
    await report('error', 'database connection refused');
    await report('running');
    await openDashboard();
    await statusShown('Recovered Agent', 'running');
    await expect
      .poll(() => row('Recovered Agent').locator('.reason').textContent())
      .toMatch(/^error (now|\d+ s ago): database connection refused$/);

    await row('Recovered Agent').getByRole('link', { name: 'Recovered Agent' }).click();
    await page.getByLabel('Heartbeat timeout (s)').fill('45');
    await page.getByRole('button', { name: 'Save timeouts' }).click();
    await expect.poll(() => page.locator('.timeouts [role="status"]').textContent()).toBe('saved; the history records it');
    const [agent] =
      await sql()`select heartbeat_timeout_s, heartbeat_timeout_source from public.agent_status_live where agent_name = 'Recovered Agent'`;
    expect(agent).toEqual({ heartbeat_timeout_s: 45, heartbeat_timeout_source: 'operator' });
    await expect
      .poll(() => page.locator('.history tbody').textContent(), { timeout: 10_000 })
      .toContain(`operator ${stack.operator.email}`);
    expect(await page.getByRole('link', { name: 'Pause alerts…' }).getAttribute('href')).toBe('#/alerts?pause=agent:Recovered%20Agent');
  }, 60_000);
});

describe('resources', () => {
  it('shows CPU of a busy agent and more memory for a hungry one, on the row and as charts', async () => {
    const busy = fixtureAgent('busy.sh', { name: 'Busy Agent', autostart: true });
    const hungry = fixtureAgent('hungry.sh', { name: 'Hungry Agent', autostart: true, env: { MEGABYTES: '150' } });
    const idle = fixtureAgent('forever.sh', { name: 'Idle Agent', autostart: true });
    await (await makeHost(stack, [busy, hungry, idle], { resources_interval: '1s' })).start();
    await openDashboard('#/?sort=memory');
    await expect
      .poll(async () => Number.parseFloat((await cell('Busy Agent', 'cpu').textContent()) ?? ''), { timeout: 20_000 })
      .toBeGreaterThan(5);
    await expect.poll(async () => megabytes(await cell('Hungry Agent', 'memory').textContent()), { timeout: 20_000 }).toBeGreaterThan(140);
    await expect.poll(async () => megabytes(await cell('Idle Agent', 'memory').textContent())).toBeGreaterThan(0);
    expect(megabytes(await cell('Hungry Agent', 'memory').textContent())).toBeGreaterThan(
      10 * megabytes(await cell('Idle Agent', 'memory').textContent()),
    );
    // sorted by memory (from the URL), the hungry agent comes first
    expect(await page.locator('.rows .row').first().getAttribute('data-agent')).toBe('Hungry Agent');
    const [figures] = await sql()`select r.cpu_percent from public.agent_resources r join public.agent_status a on a.id = r.agent_id
                                  where a.agent_name = 'Busy Agent'`;
    expect(figures.cpu_percent).toBeGreaterThan(5);

    await row('Busy Agent').getByRole('link', { name: 'Busy Agent' }).click();
    await page.locator('svg.resource-chart.cpu').waitFor();
    expect(await page.locator('svg.resource-chart.memory').count()).toBe(1);
  }, 60_000);
});

describe('availability', () => {
  it('shows the percentages and the 24-hour strip the SQL function computes for a hand-made history', async () => {
    const [{ id }] = await sql()`insert into public.agent_status (agent_name, status, created_at)
                                  values ('Availability Agent', 'warning', now() - interval '3 days') returning id`;
    const change = (hours: number, from: string, to: string, kind: string) =>
      sql()`insert into public.agent_events (agent_id, at, kind, source, from_status, to_status)
            values (${id}, now() - make_interval(mins => ${Math.round(hours * 60)}), ${kind}, 'runner', ${from}, ${to})`;
    await change(60, 'stopped', 'running', 'started');
    await change(20, 'running', 'error', 'crashed');
    await change(18, 'error', 'running', 'started');
    await change(6, 'running', 'stale', 'deadline');
    await change(5.5, 'stale', 'running', 'heartbeat');
    await change(1, 'running', 'warning', 'warning');

    await openDashboard('#/agents/Availability%20Agent');
    const figure = page.locator('.availability dd[data-window="24h"]');
    await figure.waitFor();
    const [{ a }] = await sql()`select public.agent_availability('Availability Agent') as a`;
    expect(await figure.textContent()).toBe(`${Number(a.windows['24h'].up_percent).toFixed(2)} %`);
    expect(await page.locator('.availability dd[data-window="7d"]').textContent()).toBe(
      `${Number(a.windows['7d'].up_percent).toFixed(2)} %`,
    );
    const segments = await page
      .locator('.strip .seg:not(.seg-unknown)')
      .evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.status));
    expect(segments).toEqual(a.strip.map((s: { status: string }) => s.status));
    expect(segments).toEqual(['running', 'error', 'running', 'stale', 'running', 'warning']);
  }, 60_000);
});

describe('history', () => {
  it('folds a 200-crash loop so the history of that agent fits on one screen, and filters by kind', async () => {
    const [{ id }] = await sql()`insert into public.agent_status (agent_name, status) values ('Crash Loop Agent', 'error') returning id`;
    await sql()`insert into public.agent_events (agent_id, at, kind, source, actor, message)
                values (${id}, now() - interval '20 minutes', 'command_requested', 'operator', 'operator ops@example.com', 'start requested')`;
    await sql()`insert into public.agent_events (agent_id, at, kind, source, from_status, to_status, message, details)
                select ${id}, now() - interval '10 minutes' + make_interval(secs => n),
                       case when n % 2 = 0 then 'crashed' else 'started' end, 'runner',
                       case when n % 2 = 0 then 'running' else 'error' end, case when n % 2 = 0 then 'error' else 'running' end,
                       case when n % 2 = 0 then 'exited with code 1' else format('restarted by policy (pid %s)', 1000 + n) end,
                       case when n % 2 = 0 then '{"exit_code": 1}'::jsonb else '{}'::jsonb end
                from generate_series(0, 399) n`;

    await openDashboard('#/agents/Crash%20Loop%20Agent');
    const rows = page.locator('.history tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.first().textContent()).toContain('crashed and started ×200');
    // The history re-renders whenever the agent's row changes; measure the table that is on screen
    // now rather than one that may have just been replaced (boundingBox of a detached table is null).
    await expect.poll(async () => (await page.locator('.history table').boundingBox())?.height ?? Infinity).toBeLessThan(860);

    await page.getByLabel('Show').selectOption('commands');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain('command requested');
    expect(page.url()).toContain('?history=commands');
    await page.reload();
    await expect.poll(() => rows.count()).toBe(1);
    expect(await page.getByLabel('Show').inputValue()).toBe('commands');
  }, 60_000);

  it('pages older events with keyset paging', async () => {
    const [{ id }] = await sql()`insert into public.agent_status (agent_name) values ('Long History Agent') returning id`;
    await sql()`insert into public.agent_events (agent_id, at, kind, source, from_status, to_status, health, message)
                select ${id}, now() - make_interval(mins => 100 - n), 'warning', 'agent', 'running', 'warning', n % 100,
                       format('warning %s%s', chr(65 + n / 26), chr(65 + n % 26))
                from generate_series(1, 70) n`;
    await openDashboard('#/agents/Long%20History%20Agent');
    const rows = page.locator('.history tbody tr');
    await expect.poll(() => rows.count()).toBe(30);
    expect(await rows.first().textContent()).toContain('warning CS'); // n = 70
    await page.getByRole('button', { name: 'Older' }).click();
    await expect.poll(() => rows.count()).toBe(60);
    await page.getByRole('button', { name: 'Older' }).click();
    await expect.poll(() => rows.count()).toBe(70);
    expect(await rows.last().textContent()).toContain('warning AB'); // n = 1
    expect(await page.getByRole('button', { name: 'Older' }).isHidden()).toBe(true);
  }, 60_000);
});

describe('logs on demand', () => {
  it('shows the last lines when asked and keeps following', async () => {
    const chatty = fixtureAgent('chatty.sh', { name: 'Chatty Agent', autostart: true });
    await (await makeHost(stack, [chatty])).start();
    await openDashboard('#/agents/Chatty%20Agent');
    await page.getByRole('button', { name: 'Show logs' }).click();
    const stdout = page.locator('pre.log.stdout');
    await expect.poll(() => stdout.textContent(), { timeout: 10_000 }).toMatch(/chatty: line \d+/);
    const lastLine = async () => Number(((await stdout.textContent()) ?? '').trim().split('\n').at(-1)?.split(' ').at(-1));
    const first = await lastLine();
    expect(
      await page
        .getByRole('status')
        .filter({ hasText: /answered in/ })
        .count(),
    ).toBe(1);

    await page.getByLabel('Follow').check();
    await expect.poll(lastLine, { timeout: 15_000 }).toBeGreaterThan(first + 5);
    await expect.poll(() => page.locator('pre.log.stderr').textContent()).toMatch(/chatty: warning at line \d+/);
    const [{ requests }] = await sql()`select count(*)::int as requests from public.agent_log_requests where answered_at is not null`;
    expect(requests).toBeGreaterThanOrEqual(2);
    await screenshot(page, 'dashboard-logs', { fullPage: false });
  }, 60_000);
});

describe('hosts, URL, shortcuts and dark mode', () => {
  it('lists each runner with its status, version, pid and agents, and starts all on one host', async () => {
    const one = fixtureAgent('forever.sh', { name: 'Host Agent One' });
    const two = fixtureAgent('forever.sh', { name: 'Host Agent Two' });
    const host = await makeHost(stack, [one, two]);
    await host.start();
    await openDashboard('#/hosts');
    const line = page.locator(`.hosts tr[data-host="${host.host}"]`);
    await expect.poll(() => line.locator('.host-status').textContent()).toBe('online');
    const [runner] = await sql()`select version, pid from public.runners where host = ${host.host}`;
    expect(await line.textContent()).toContain(runner.version);
    expect(await line.textContent()).toContain(String(runner.pid));
    await expect.poll(() => line.locator('.counts').textContent()).toContain('stopped 2');

    await line.getByRole('button', { name: `Start all on ${host.host}` }).click();
    await page
      .getByRole('dialog')
      .getByRole('button', { name: `Start all on ${host.host}` })
      .click({ timeout: 5000 });
    await expect.poll(() => line.locator('.counts').textContent(), { timeout: 15_000 }).toContain('running 2');
    expect(agentProcesses('Host Agent One')).toHaveLength(1);
    expect(agentProcesses('Host Agent Two')).toHaveLength(1);
    await screenshot(page, 'dashboard-hosts', { fullPage: false });
  }, 60_000);

  it('keeps filters and sort in the URL: reload keeps them, Back returns to them from an agent', async () => {
    const agent = fixtureAgent('forever.sh', { name: 'Url Agent', autostart: true });
    await (await makeHost(stack, [agent])).start();
    await openDashboard();
    await statusShown('Url Agent', 'running');
    await page.getByLabel('Search').fill('url');
    await page.getByLabel('Status', { exact: true }).selectOption('running');
    await page.getByRole('button', { name: 'Uptime', exact: true }).click();
    await expect.poll(() => page.url()).toContain('status=running');
    expect(page.url()).toContain('q=url');
    expect(page.url()).toContain('sort=uptime');

    await page.reload();
    await row('Url Agent').waitFor();
    expect(await page.getByLabel('Search').inputValue()).toBe('url');
    expect(await page.getByLabel('Status', { exact: true }).inputValue()).toBe('running');
    expect(await page.locator('[role="columnheader"][aria-sort="ascending"]').textContent()).toContain('Uptime');

    await row('Url Agent').getByRole('link', { name: 'Url Agent' }).click();
    await page.locator('section.detail h2').waitFor();
    await page.goBack();
    await row('Url Agent').waitFor();
    expect(page.url()).toContain('status=running');
    expect(await page.locator('.rows .row').count()).toBe(1);
  }, 60_000);

  it('lists the shortcuts on ?, and they work', async () => {
    await openDashboard();
    await page.locator('.rows .row, .empty').first().waitFor();
    await page.keyboard.press('?');
    const dialog = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain('search agents by name');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await page.keyboard.press('h');
    await expect.poll(() => page.url()).toContain('#/hosts');
    await page.keyboard.press('/');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('search');
    await page.keyboard.press('Escape');
    await page.locator('body').click({ position: { x: 5, y: 300 } });
    const before = await page.evaluate(() => document.documentElement.dataset.theme);
    await page.keyboard.press('t');
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).not.toBe(before);
  }, 60_000);

  it('follows the system’s dark setting, and the toggle overrides it; screenshots of both', async () => {
    const agents = ['Dark Scraper', 'Dark Reply Bot'].map((name) => fixtureAgent('forever.sh', { name, autostart: true }));
    await (await makeHost(stack, agents, { resources_interval: '1s' })).start();
    await context.close();
    context = await browser!.newContext({ viewport: { width: 1360, height: 860 }, colorScheme: 'dark' });
    page = await context.newPage();
    await openDashboard();
    await statusShown('Dark Scraper', 'running');
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    const background = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    expect(background).toBe('rgb(13, 17, 23)');
    await expect.poll(() => cell('Dark Scraper', 'memory').textContent(), { timeout: 15_000 }).toMatch(/B$/);
    await screenshot(page, 'dashboard-dark', { fullPage: false });

    await page.getByLabel('Colour theme').selectOption('light');
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('light');
    await page.reload();
    await page.locator('.live').waitFor();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('light');
  }, 60_000);
});
