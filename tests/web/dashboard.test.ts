// The dashboard end to end: the production build in headless Chromium, against a real stack
// (PostgREST, auth stand-in, database with the real SQL API) and a real runner supervising real
// agent processes. Every assertion is on what the page shows, checked against the database.
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createJwtSecret, signApiKey } from '../../runner/local-stack/keys.ts';
import { useTestStack } from '../helpers/stack.ts';
import { agentProcesses, fixtureAgent, makeHost } from '../runner/host.ts';
import { HEALTH_NOT_REPORTED_WHY } from '../../shared/rows.ts';
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
const chip = (name: string) => row(name).locator('.chip');

async function statusShown(name: string, status: string, timeout = 15_000) {
  await expect.poll(() => chip(name).textContent(), { timeout, interval: 100 }).toContain(status);
}

async function openDashboard() {
  await signIn(page, served!.url, stack.operator);
  await page.locator('.live').waitFor();
}

/** A runner on its own host supervising forever.sh under each name, started at once. */
async function runnerWith(names: string[], settings: Record<string, unknown> = {}) {
  const host = await makeHost(
    stack,
    names.map((name) => fixtureAgent('forever.sh', { name, autostart: true })),
    settings,
  );
  const runner = await host.start();
  return { host, runner };
}

/** An agent that speaks for itself through the SQL API with its own token (no runner). */
async function selfReportingAgent(name: string) {
  const [{ token }] = await sql()`select token from public.create_api_token('agent', p_agent_name => ${name})`;
  const report = (event: string, extra: { message?: string; health?: number; activity?: string; details?: { log_tail: string[] } } = {}) =>
    sql()`select public.agent_report(${token}, ${name}, ${event}, ${extra.message ?? null}, ${extra.health ?? null},
            ${extra.activity ?? null}, null, null, null, ${extra.details ? sql().json(extra.details) : null})`;
  return { token, report };
}

describe('the dashboard against a real stack and runner', () => {
  it('signs in and shows every agent live, with counts, health, heartbeat age and the polling indicator', async () => {
    await runnerWith(['Tweet Scraping Agent', 'Reply Bot', 'News Digest']);
    const warn = await selfReportingAgent('Sentiment Analyzer');
    await warn.report('started', { activity: 'Scoring replies' });
    await warn.report('warning', { message: 'rate limited by the API: backing off 30 s', health: 55 });
    const broken = await selfReportingAgent('Image Resizer');
    await broken.report('started');
    await broken.report('error', { message: 'disk full: /var/cache/images', health: 10 });
    await selfReportingAgent('Legacy Importer');

    await openDashboard();
    for (const name of ['Tweet Scraping Agent', 'Reply Bot', 'News Digest']) await statusShown(name, 'running');
    await statusShown('Sentiment Analyzer', 'warning');
    await statusShown('Image Resizer', 'error');
    await statusShown('Legacy Importer', 'stopped');

    await expect.poll(() => page.locator('.live .mode').textContent()).toBe('Polling every 2.5 s');
    expect(await row('Sentiment Analyzer').locator('.reason').textContent()).toBe('rate limited by the API: backing off 30 s');
    expect(await row('Sentiment Analyzer').locator('.num').textContent()).toBe('55');
    // forever.sh under the runner never says its health: no figure (an empty bar and "0" read as dead)
    expect(
      await row('Tweet Scraping Agent')
        .locator('.num')
        .evaluate((el) => [el.textContent, el.getAttribute('title')]),
    ).toEqual(['–', HEALTH_NOT_REPORTED_WHY]);
    expect(await row('Sentiment Analyzer').locator('.activity').textContent()).toBe('Scoring replies');
    expect(await row('Tweet Scraping Agent').locator('.c-heartbeat').textContent()).toMatch(/^(now|\d+ s ago)$/);
    expect(await row('Legacy Importer').locator('.c-host .note').textContent()).toBe('no runner');

    const [{ running }] = await sql()`select count(*)::int as running from public.agent_status_live where status = 'running'`;
    expect(await page.locator('.tally-running .count').textContent()).toBe(String(running));
    // what needs attention sorts first
    const order = await page.locator('.rows .row').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.status));
    expect(order.indexOf('error')).toBeLessThan(order.indexOf('running'));
    await screenshot(page, 'dashboard-main');
  }, 60_000);

  it('stops an agent and starts it again, showing the command in flight until the runner finishes it', async () => {
    const name = 'Stop Start Agent';
    await runnerWith([name]);
    await openDashboard();
    await statusShown(name, 'running');
    const [pid] = agentProcesses(name);
    expect(pid).toBeGreaterThan(0);

    await row(name)
      .getByRole('button', { name: `Stop ${name}` })
      .click();
    await statusShown(name, 'stopped');
    expect(agentProcesses(name)).toEqual([]);
    expect(
      await row(name)
        .getByRole('button', { name: `Stop ${name}` })
        .isDisabled(),
    ).toBe(true);

    // from the keyboard this time
    await row(name)
      .getByRole('button', { name: `Start ${name}` })
      .focus();
    await page.keyboard.press('Enter');
    await statusShown(name, 'running');
    expect(agentProcesses(name)).toHaveLength(1);
    const [command] =
      await sql()`select c.status, c.requested_by from public.agent_commands c join public.agent_status a on a.id = c.agent_id
                                  where a.agent_name = ${name} order by c.id desc limit 1`;
    expect(command).toEqual({ status: 'succeeded', requested_by: `operator ${stack.operator.email}` });
  }, 60_000);

  it('restarts an agent from its menu with the keyboard alone', async () => {
    const name = 'Restart Agent';
    await runnerWith([name]);
    await openDashboard();
    await statusShown(name, 'running');
    const [before] = agentProcesses(name);

    await row(name).getByLabel(`More actions for ${name}`).focus();
    await page.keyboard.press('Enter');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Restart');
    await page.keyboard.press('Enter');
    // one process again, and a new one (between the two there is briefly none)
    await expect
      .poll(
        () => {
          const pids = agentProcesses(name);
          return pids.length === 1 && pids[0] !== before;
        },
        { timeout: 15_000 },
      )
      .toBe(true);
    await statusShown(name, 'running');
    expect(await row(name).locator('details.menu').getAttribute('open')).toBeNull();
  }, 60_000);

  it('force stop asks first, says it does not touch the process, and changes only the database', async () => {
    const name = 'Hidden Process Agent';
    // The runner's relayed heartbeat would mark the live process running again (as it should); keep
    // it out of this test's few seconds.
    await runnerWith([name], { heartbeat_interval: '10m' });
    await openDashboard();
    await statusShown(name, 'running');
    const [pid] = agentProcesses(name);

    await row(name).getByLabel(`More actions for ${name}`).click();
    await row(name).getByRole('menuitem', { name: 'Force stop…' }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.textContent()).toContain('It does not touch the process');
    await dialog.getByRole('button', { name: 'Force stopped in the database' }).click();

    await statusShown(name, 'stopped');
    expect(agentProcesses(name)).toEqual([pid]);
    const [event] =
      await sql()`select e.kind, e.actor, e.to_status from public.agent_events e join public.agent_status a on a.id = e.agent_id
                                where a.agent_name = ${name} and e.kind = 'force'`;
    expect(event).toEqual({ kind: 'force', actor: `operator ${stack.operator.email}`, to_status: 'stopped' });
  }, 60_000);

  it('turns an agent that goes silent stale without a reload', async () => {
    const name = 'Silent Agent';
    const agent = await selfReportingAgent(name);
    await sql()`update public.agent_status set heartbeat_timeout_s = 5 where agent_name = ${name}`;
    await agent.report('started');
    await openDashboard();
    await statusShown(name, 'running');
    await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));

    await statusShown(name, 'stale', 15_000);
    expect(await row(name).locator('.reason').textContent()).toMatch(/^no heartbeat for \d+ s$/);
    expect(await row(name).locator('.c-heartbeat').textContent()).toMatch(/^\d+ s ago$/);
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
  }, 60_000);

  it('shows a failed or expired command with its reason', async () => {
    const name = 'Already Running Agent';
    const { host, runner } = await runnerWith([name]);
    await openDashboard();
    await statusShown(name, 'running');

    // start of a running agent succeeds as a no-op: no red note
    await page.getByRole('button', { name: 'Start all' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Start all' }).click();
    await expect
      .poll(
        async () =>
          (
            await sql()`select c.result from public.agent_commands c join public.agent_status a on a.id = c.agent_id
                        where a.agent_name = ${name} and c.action = 'start' order by c.id desc limit 1`
          )[0]?.result ?? '',
        { timeout: 15_000 },
      )
      .toMatch(/^already running \(pid \d+\)$/);
    await expect.poll(() => row(name).locator('.command').textContent(), { timeout: 15_000 }).toBe('');
    expect(await row(name).locator('.command.failed').count()).toBe(0);

    // its runner said goodbye: the row, Start all and Start warn at once, naming the runner and how
    // long (issue 19, case 10; the CLI exits 7 at once)
    await runner.shutdown({ stopAgents: true });
    await statusShown(name, 'stopped');
    await expect.poll(() => row(name).locator('.c-host .note').textContent()).toMatch(/^runner stopped \d+ s ago$/);
    await page.getByRole('button', { name: 'Start all' }).click();
    const startAll = page.getByRole('dialog');
    await expect
      .poll(() => startAll.textContent())
      .toMatch(
        new RegExp(
          `The runner on ${host.host} is stopped \\(said goodbye \\d+ s ago\\): nothing will start ${name} until a runner runs there again`,
        ),
      );
    await startAll.getByRole('button', { name: 'Cancel' }).click();
    await row(name)
      .getByRole('button', { name: `Start ${name}` })
      .click();
    const warning = page.getByRole('dialog');
    await expect
      .poll(() => warning.textContent())
      .toMatch(new RegExp(`is stopped \\(said goodbye \\d+ s ago\\): nothing will start ${name}`));
    await warning.getByRole('button', { name: 'Queue start anyway' }).click();
    await expect.poll(() => row(name).locator('.command').textContent()).toBe('start pending…');
    expect(
      await row(name)
        .getByRole('button', { name: `Start ${name}` })
        .isDisabled(),
    ).toBe(true);
    // past its expiry, before any sweep: the row and the notice both say expired, never one pending
    // while the other says expired (the notice said "no answer within 120 s … is pending" while the row
    // went on to say expired)
    await sql()`update public.agent_commands set expires_at = now() where status = 'pending'`;
    await expect
      .poll(() => row(name).locator('.command.failed').textContent(), { timeout: 10_000 })
      .toBe('start expired: no runner claimed it before it expired');
    // (the Start all above may have its own notice: its commands for earlier tests' agents expired too)
    await expect
      .poll(() => page.locator('.notice-error', { hasText: `start ${name} expired: no runner claimed it before it expired` }).count(), {
        timeout: 10_000,
      })
      .toBe(1);
    expect((await page.locator('.notices').textContent()) ?? '').not.toContain('pending');
    await sql()`select public.agent_status_sweep()`;
    await expect
      .poll(() => row(name).locator('.command.failed').textContent(), { timeout: 10_000 })
      .toBe('start expired: no runner claimed it before it expired');
    // a later change of the agent's status supersedes the red note
    await sql()`select public.force_agent_status(${name}, 'error', 0, 'checked by hand')`;
    await statusShown(name, 'error');
    await expect.poll(() => row(name).locator('.command').textContent(), { timeout: 15_000 }).toBe('');
    // the Hosts page: stopped, not offline or silent
    await page.goto(`${served!.url}#/hosts`);
    await expect.poll(() => page.locator(`.hosts tr[data-host="${host.host}"] .host-status`).textContent()).toMatch(/^stopped \d+ s ago$/);
  }, 90_000);

  it('offers Stop and Restart, not Start, for an agent no runner manages, and says how long they take', async () => {
    const name = 'Unmanaged Agent';
    await (await selfReportingAgent(name)).report('started');
    await openDashboard();
    await statusShown(name, 'running');
    const stop = row(name).getByRole('button', { name: `Stop ${name}` });
    expect(await stop.isDisabled()).toBe(false);
    // no interval declared: up to its heartbeat timeout, the database's default 120 s
    expect(await stop.getAttribute('title')).toBe(
      'no runner manages this agent: it gets the stop with its next heartbeat, up to 120 s from now',
    );
    // Restart sits in the row's menu
    expect(await row(name).getByRole('menuitem', { name: 'Restart', includeHidden: true }).isDisabled()).toBe(false);
    const start = row(name).getByRole('button', { name: `Start ${name}` });
    expect(await start.isDisabled()).toBe(true);
    expect(await start.getAttribute('title')).toBe('no runner manages this agent, so nothing can start it');
    expect(await row(name).locator('.c-host .note').textContent()).toBe('no runner');
  }, 60_000);

  it('opens an agent: history with who did what, the last error in full, log lines and a health chart', async () => {
    const name = 'Detail Agent';
    const agent = await selfReportingAgent(name);
    await agent.report('started', { activity: 'Fetching tweets' });
    for (const health of [95, 80, 60]) await agent.report('running', { health });
    await agent.report('warning', { message: 'slow responses from the API', health: 45 });
    const traceback =
      'Traceback (most recent call last):\n  File "agent.py", line 42, in fetch\n    tweets = client.search(query)\nValueError: query must not be empty';
    await agent.report('error', {
      message: traceback,
      health: 20,
      details: { log_tail: ['2026-11-24 10:00:01 fetching page 3', 'WARNING retrying after 429', 'ERROR query must not be empty'] },
    });
    await sql()`select public.force_agent_status(${name}, 'stopped', 0, 'cleared by hand', (select null::text))`;
    // Spread the history over the last hour, as a real agent's would be, so the chart has a shape.
    await sql()`update public.agent_events e set at = now() - make_interval(mins => 9 * n.rank::int)
                from (select id, row_number() over (order by id desc) - 1 as rank from public.agent_events
                      where agent_id = (select id from public.agent_status where agent_name = ${name})) n
                where e.id = n.id`;

    await openDashboard();
    await statusShown(name, 'stopped');
    await row(name).getByRole('link', { name }).click();
    const detail = page.locator('section.detail');
    // started, running x3 (health changes, folded into one row), warning, error, force
    await expect.poll(() => detail.locator('.history tbody tr').count(), { timeout: 10_000 }).toBe(5);
    expect(await detail.locator('.history tr.folded').textContent()).toContain('running ×3');
    expect(page.url()).toContain('#/agents/Detail%20Agent');
    expect(await detail.locator('.error-text').textContent()).toBe(traceback);
    expect(await detail.locator('pre.log').textContent()).toBe(
      '2026-11-24 10:00:01 fetching page 3\nWARNING retrying after 429\nERROR query must not be empty',
    );
    expect(await detail.locator('svg.health-chart circle').count()).toBeGreaterThanOrEqual(5);
    const force = detail.locator('.history tr[data-kind="force"]');
    expect(await force.textContent()).toContain('cleared by hand');
    expect(await force.textContent()).toContain('error → stopped');
    await screenshot(page, 'dashboard-detail');

    await page.goBack();
    await row(name).waitFor();
    expect(await detail.isHidden()).toBe(true);
  }, 60_000);

  it('filters by status and host, searches by name and sorts from the keyboard', async () => {
    const { host } = await runnerWith(['Filter Alpha', 'Filter Beta']);
    await openDashboard();
    await statusShown('Filter Alpha', 'running');
    await statusShown('Filter Beta', 'running');

    await page.getByLabel('Search').fill('filter');
    await expect.poll(() => page.locator('.rows .row').count()).toBe(2);
    await page.getByLabel('Host', { exact: true }).selectOption(host.host);
    await page.getByLabel('Status', { exact: true }).selectOption('stopped');
    await expect.poll(() => page.locator('.rows .row').count()).toBe(0);
    expect(await page.locator('.empty').textContent()).toBe('No agent matches these filters.');
    await page.getByLabel('Status', { exact: true }).selectOption('running');
    await expect.poll(() => page.locator('.rows .row').count()).toBe(2);

    const names = () => page.locator('.rows .row').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.agent));
    await page.getByRole('button', { name: 'Agent', exact: true }).focus();
    // the database sorts: the rows come back with the next read
    await page.keyboard.press('Enter');
    await expect.poll(names).toEqual(['Filter Alpha', 'Filter Beta']);
    await page.keyboard.press('Enter');
    await expect.poll(names).toEqual(['Filter Beta', 'Filter Alpha']);
    expect(await page.locator('[role="columnheader"][aria-sort="descending"]').textContent()).toContain('Agent');
  }, 60_000);

  it('keeps the last data marked old while the API is down, and recovers by itself', async () => {
    const name = 'Outage Agent';
    await (await selfReportingAgent(name)).report('started');
    await openDashboard();
    await statusShown(name, 'running');

    await stack.gateway.stop();
    try {
      await page.getByRole('alert').filter({ hasText: 'Cannot reach the API' }).waitFor({ timeout: 10_000 });
      expect(await page.locator('#app').getAttribute('class')).toContain('old');
      expect(await page.locator('.live .mode').textContent()).toBe('API unreachable');
      expect(await chip(name).textContent()).toContain('running');
    } finally {
      await stack.gateway.start();
    }
    await page.locator('.banner').waitFor({ state: 'hidden', timeout: 20_000 });
    expect(await page.locator('#app').getAttribute('class')).not.toContain('old');
    expect(await page.locator('.live .mode').textContent()).toBe('Polling every 2.5 s');
  }, 60_000);

  it('shows a signed-in user who is not an operator a clear screen and no agents', async () => {
    await stack.createUser('viewer@agent-status.test', 'viewer-password');
    await signIn(page, served!.url, { email: 'viewer@agent-status.test', password: 'viewer-password' });
    await page.getByRole('heading', { name: 'You are signed in, but not an operator' }).waitFor();
    expect(await page.locator('pre').textContent()).toBe('agent-status operator add viewer@agent-status.test');
    expect(await page.locator('.rows .row').count()).toBe(0);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  }, 60_000);

  it('says what to fix when config.js is empty, and refuses a secret key of either style', async () => {
    const serve = (config: object) =>
      page.route('**/config.js', (route) =>
        route.fulfill({ contentType: 'text/javascript', body: `window.AGENT_STATUS_CONFIG = ${JSON.stringify(config)};` }),
      );
    await serve({ supabaseUrl: '', supabaseAnonKey: '' });
    await page.goto(served!.url);
    await page.getByRole('heading', { name: 'The dashboard is not configured' }).waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('config.js has no supabaseUrl or supabaseAnonKey');

    for (const [key, message] of [
      [stack.serviceKey, 'config.js holds a key that must never reach a browser: it is a secret key (sb_secret_...)'],
      [
        await signApiKey(createJwtSecret(), 'service_role'),
        'config.js holds a key that must never reach a browser: it is the service-role key',
      ],
    ]) {
      await page.unroute('**/config.js');
      await serve({ supabaseUrl: stack.url, supabaseAnonKey: key });
      await page.reload();
      await page.getByRole('heading', { name: 'The dashboard is not configured' }).waitFor();
      expect(await page.getByRole('alert').textContent()).toContain(message);
      expect(await page.getByLabel('Password').count()).toBe(0);
    }
  }, 60_000);

  it('refuses a wrong password with a message, and fits a narrow screen', async () => {
    await signIn(page, served!.url, { email: stack.operator.email, password: 'wrong-password' });
    await expect.poll(() => page.locator('.form-error').textContent()).toBe('Invalid login credentials. Check the email and password.');

    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByLabel('Password').fill(stack.operator.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.rows .row').first().waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // The viewport only: rows below it are not painted yet (content-visibility), by design.
    await screenshot(page, 'dashboard-narrow', { fullPage: false });
  }, 60_000);

  it('while nothing is written, polls skip the counts yet show each deadline and age as the clock moves them', async () => {
    const name = 'Quiet Agent';
    const agent = await selfReportingAgent(name);
    await agent.report('started');
    // the last write: its deadline passes 12 s from now with no write, as an agent that hangs
    await sql()`update public.agent_status set stale_at = now() + interval '12 seconds' where agent_name = ${name}`;
    const answers: { unchanged: boolean; at: number }[] = [];
    page.on('response', async (response) => {
      if (!response.url().includes('/rpc/dashboard_agent_page')) return;
      const body = (await response.json().catch(() => ({}))) as { unchanged?: boolean };
      answers.push({ unchanged: body.unchanged === true, at: Date.now() });
    });
    await openDashboard();
    await statusShown(name, 'running');
    await statusShown(name, 'stale', 20_000);
    const staleAt = Date.now();
    // the polls before it were answered unchanged: the deadline alone made the counts' pass run again
    expect(answers.filter((a) => a.at < staleAt && a.unchanged).length).toBeGreaterThan(0);
    const [{ stale }] = await sql()`select count(*)::int as stale from public.agent_status_live where status = 'stale'`;
    await expect.poll(() => page.locator('.tally-stale .count').textContent()).toBe(String(stale));
    // the view's sentence counts the seconds: unchanged answers carry it fresh
    const seconds = async () => Number((await row(name).locator('.reason').textContent())?.match(/^no heartbeat for (\d+) s$/)?.[1]);
    const first = await seconds();
    await expect.poll(seconds, { timeout: 10_000 }).toBeGreaterThanOrEqual(first + 3);
    expect(answers.filter((a) => a.at > staleAt && a.unchanged).length).toBeGreaterThan(0);
  }, 60_000);

  // last: it adds a fleet the tests above would count
  it('holds a fleet of several API pages: counts, filters, search and sort from the database, the last agent reachable, a change painted', async () => {
    await sql()`insert into public.agent_status (agent_name, status, health) select format('paged-%s', lpad(i::text, 5, '0')),
                  (array['stopped', 'stopped', 'error'])[1 + i % 3], i % 101
                from generate_series(1, 2345) i`;
    const [{ total }] = await sql()`select count(*)::int as total from public.agent_status_live`;
    await openDashboard();
    const rowCount = () => page.locator('[role="table"]').getAttribute('aria-rowcount');
    // the rows and the header
    await expect.poll(rowCount, { timeout: 30_000 }).toBe(String(total + 1));
    // only the rows around the viewport are in the page
    expect(await page.locator('.rows .row').count()).toBeLessThan(100);
    const counts = await sql()`select status, count(*)::int as n from public.agent_status_live group by status`;
    for (const { status, n } of counts) expect(await page.locator(`.tally-${status} .count`).textContent()).toBe(String(n));
    expect(await page.locator('.tally:not([data-status]) .count').textContent()).toBe(String(total));

    // a chip filters; the count and the rows are the database's
    const errors = counts.find((c) => c.status === 'error')!.n as number;
    await page.locator('.tally-error').click();
    await expect.poll(rowCount).toBe(String(errors + 1));
    expect(new Set(await page.locator('.rows .row').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.status)))).toEqual(
      new Set(['error']),
    );
    await page.locator('.tally-error').click();
    await expect.poll(rowCount).toBe(String(total + 1));

    const names = () => page.locator('.rows .row').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.agent));
    await page.getByLabel('Search').fill('paged-0234');
    await expect
      .poll(names, { timeout: 10_000 })
      .toEqual(['paged-02342', 'paged-02345', 'paged-02340', 'paged-02341', 'paged-02343', 'paged-02344']);
    await page.getByRole('button', { name: 'Agent', exact: true }).click();
    await expect.poll(names).toEqual(['paged-02340', 'paged-02341', 'paged-02342', 'paged-02343', 'paged-02344', 'paged-02345']);
    expect(page.url()).toContain('q=paged-0234');
    expect(page.url()).toContain('sort=name');

    // the last agent by name, at the bottom of the whole list sorted by name
    await page.getByLabel('Search').fill('');
    await expect.poll(rowCount).toBe(String(total + 1));
    const [{ last }] = await sql()`select max(agent_name) as last from public.agent_status_live`;
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await expect.poll(async () => (await names()).at(-1), { timeout: 10_000 }).toBe(last);
    expect(await row(last).getAttribute('aria-rowindex')).toBe(String(total + 1));

    // a change to one agent on screen is painted without a reload
    const shown = (await names()).at(-3)!;
    await sql()`update public.agent_status set health = 77, health_reported_at = now(), status_reason = 'changed', updated_at = now() where agent_name = ${shown}`;
    await expect.poll(() => row(shown).locator('.num').textContent(), { timeout: 10_000 }).toBe('77');
  }, 120_000);
});
