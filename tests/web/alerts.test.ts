// The Alerts page in headless Chromium against a stack whose own timer runs the real dispatcher, with
// a receiver on 127.0.0.1 as the channels' endpoint: masked secrets, "Send test" reaching the
// receiver, the log with failures first, and "Pause alerts" recorded in the database.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { freePort } from '../../runner/local-stack/ports.ts';
import { useTestStack } from '../helpers/stack.ts';
import { setAgentState } from '../helpers/agents.ts';
import { useReceiver } from '../alerts/receiver.ts';
import {
  buildDashboard,
  launchChromium,
  REPO,
  removeDir,
  screenshot,
  serveDashboard,
  signIn,
  watchConsole,
  type ServedDashboard,
} from './helpers.ts';

const stack = useTestStack({ functions: true, alerts: true, alertIntervalMs: 1000 });
const receiver = useReceiver();
let dir: string | undefined;
let served: ServedDashboard | undefined;
let browser: Browser | undefined;
let page: Page;
let logs: string[];

beforeAll(async () => {
  const sql = stack.db.sql;
  receiver.answer('/broken', { status: 503, body: 'upstream unavailable' });
  await sql`select public.alert_channel_save('ops-slack', 'slack', ${`${receiver.url}/services/T0/B0/supersecretpath`})`;
  await sql`select public.alert_channel_save('ops-hook', 'webhook', ${`${receiver.url}/broken`}, 'whsec_page_0123456789')`;
  await sql`select public.alert_channel_rules('ops-hook', '{"grace_s": 0, "agents": ["scraper-*"]}')`;
  await sql`update public.alert_settings set retry_window_s = 5`;
  await setAgentState(sql, 'scraper-1', 'running');
  await sql`select agent_private.apply_event(id, 'error', 'agent', 'test', p_message => 'login refused') from public.agent_status where agent_name = 'scraper-1'`;
  dir = await buildDashboard();
  served = await serveDashboard(dir, { supabaseUrl: stack.url, supabaseAnonKey: stack.anonKey });
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
  logs = watchConsole(page);
}, 120_000);

afterAll(async () => {
  if (logs?.length) console.log(logs.join('\n'));
  await browser?.close();
  await served?.close();
  removeDir(dir);
});

describe('the Alerts page', { timeout: 90_000 }, () => {
  it('lists channels with their secrets masked and their last delivery', async () => {
    await signIn(page, served!.url, stack.operator);
    await page.getByRole('link', { name: 'Alerts' }).click();
    const slack = page.locator('tr[data-channel="ops-slack"]');
    await expect.poll(() => slack.textContent(), { timeout: 30_000 }).toContain('127.0.0.1');
    expect(await slack.textContent()).not.toContain('supersecretpath');
    expect(await page.locator('.alerts').textContent()).not.toContain('whsec_page');
    expect(await page.locator('tr[data-channel="ops-hook"]').textContent()).toContain('secret ••••6789');
  });

  it('"Send test" reaches the receiver and the channel shows the result', async () => {
    await page.locator('tr[data-channel="ops-slack"]').getByRole('button', { name: 'Send test' }).click();
    await expect.poll(() => receiver.on('/services/T0/B0/supersecretpath').length, { timeout: 30_000 }).toBe(1);
    await expect
      .poll(() => page.locator('tr[data-channel="ops-slack"] .last').textContent(), { timeout: 30_000 })
      .toMatch(/delivered · HTTP 200/);
  });

  it('shows failed deliveries first in the log', async () => {
    // the webhook answers 503 until the retry window (5 s here) is over: then it is dead
    await stack.db.sql`
      update public.alert_deliveries set created_at = now() - interval '1 minute', due_at = now()
      where status = 'pending' and channel_id = (select id from public.alert_channels where name = 'ops-hook')`;
    await expect.poll(() => page.locator('.alerts-log tbody tr').first().textContent(), { timeout: 30_000 }).toMatch(/^dead/);
    expect(await page.locator('.alerts-log tbody tr').first().textContent()).toContain('HTTP 503');
  });

  it('"Pause alerts" on the agent\'s page pauses it, and the screenshot shows the whole Alerts page', async () => {
    await page.goto(`${served!.url}#/agents/scraper-1`);
    await page.getByRole('link', { name: 'Pause alerts…' }).click();
    await expect.poll(() => page.getByLabel('Pause target').inputValue(), { timeout: 30_000 }).toBe('scraper-1');
    await page.getByLabel('Pause note').fill('rotating credentials');
    await page.getByRole('button', { name: 'Pause alerts' }).click();
    await expect.poll(() => page.locator('.alerts-paused').textContent(), { timeout: 30_000 }).toContain('scraper-1 paused until');
    const [row] = await stack.db.sql`select reason from public.agent_alerts_paused where agent_name = 'scraper-1'`;
    expect(row.reason).toBe('rotating credentials');
    const shot = await screenshot(page, 'alerts-page');
    // UPDATE_SCREENSHOTS=1 refreshes the README's copy; a plain run leaves the repository alone
    if (process.env.UPDATE_SCREENSHOTS) copyFileSync(shot, join(REPO, 'docs/screenshots/alerts.png'));
  });
});

describe('channels made on the page', { timeout: 90_000 }, () => {
  const shoot = async (target: Page, name: string) => {
    const shot = await screenshot(target, name, { fullPage: true });
    if (process.env.UPDATE_SCREENSHOTS) copyFileSync(shot, join(REPO, `docs/screenshots/${name}.png`));
  };

  it('adds a webhook channel with its rules; the secret is write-only, stored whole, shown masked', async () => {
    await page.goto(`${served!.url}#/alerts`);
    await page.getByRole('button', { name: 'Add channel' }).click();
    const form = page.getByRole('form', { name: 'Add a channel' });
    await form.getByLabel('Name').fill('page-hook');
    await form.getByLabel('Kind').selectOption('webhook');
    await form.getByLabel('Endpoint').fill(`${receiver.url}/page-hook`);
    await form.getByLabel('Secret', { exact: true }).fill('whsec_made_on_the_page_4242');
    await form.getByLabel('Agents').fill('scraper-*, bot-?');
    await form.getByLabel('Grace (s)').fill('30');
    await form.getByLabel('crash loop').uncheck();
    await shoot(page, 'alerts-channel-add');
    await form.getByRole('button', { name: 'Save channel' }).click();

    const row = page.locator('tr[data-channel="page-hook"]');
    await expect.poll(() => row.textContent(), { timeout: 15_000 }).toContain('secret ••••4242');
    expect(await page.locator('.alerts').textContent()).not.toContain('whsec_made_on_the_page');
    const [stored] = await stack.db.sql`
      select kind, endpoint, secret, flips, agent_patterns, grace_s from public.alert_channels where name = 'page-hook'`;
    expect(stored).toEqual({
      kind: 'webhook',
      endpoint: `${receiver.url}/page-hook`,
      secret: 'whsec_made_on_the_page_4242',
      flips: ['stale', 'error', 'host'],
      agent_patterns: ['scraper-*', 'bot-?'],
      grace_s: 30,
    });
  });

  it('edits a channel without ever holding its secret: empty keeps it; a bad value says what to fix', async () => {
    const row = page.locator('tr[data-channel="page-hook"]');
    await row.getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('form', { name: 'Edit page-hook' });
    expect(await form.getByLabel('Secret', { exact: true }).inputValue()).toBe('');
    expect(await form.textContent()).toContain('stored: ••••4242');
    await form.getByLabel('Endpoint').fill('ftp://example.com/hook');
    await form.getByRole('button', { name: 'Save channel' }).click();
    await expect.poll(() => form.locator('[role="status"]').textContent(), { timeout: 15_000 }).toMatch(/^bad channel: .*http\(s\) URL/);
    await form.getByLabel('Endpoint').fill('');
    await form.getByLabel('Grace (s)').fill('0');
    await form.getByRole('button', { name: 'Save channel' }).click();
    await expect.poll(() => form.isVisible(), { timeout: 15_000 }).toBe(false);
    const [stored] = await stack.db.sql`select secret, grace_s from public.alert_channels where name = 'page-hook'`;
    expect(stored).toEqual({ secret: 'whsec_made_on_the_page_4242', grace_s: 0 });
  });

  it('lists every attempt of a delivery with time, HTTP status, duration and error, and when it was delivered', async () => {
    receiver.answer('/page-hook', { status: 500, body: 'try later' }, { status: 200, body: 'ok' });
    await stack.db.sql`update public.alert_settings set retry_window_s = 600`;
    await page.locator('tr[data-channel="page-hook"]').getByRole('button', { name: 'Send test' }).click();
    await expect.poll(() => receiver.on('/page-hook').length, { timeout: 30_000 }).toBe(1);
    // the retry after the 500, without waiting out the backoff
    await stack.db.sql`
      update public.alert_deliveries set due_at = now()
      where status = 'pending' and channel_id = (select id from public.alert_channels where name = 'page-hook')`;
    await expect.poll(() => receiver.on('/page-hook').length, { timeout: 30_000 }).toBe(2);
    const delivered = page.locator('.alerts-log tbody tr', { hasText: 'page-hook' }).first();
    await expect.poll(() => delivered.locator('td').first().textContent(), { timeout: 30_000 }).toBe('delivered');
    await delivered.locator('details.attempts summary').click();
    const attempts = delivered.locator('details.attempts li');
    await expect.poll(() => attempts.count()).toBe(2);
    expect(await attempts.nth(0).textContent()).toMatch(/ · HTTP 500 · \d+ ms · HTTP 500 Internal Server Error: try later$/);
    expect(await attempts.nth(1).textContent()).toMatch(/ · HTTP 200 · \d+ ms$/);
    expect(await delivered.locator('td').nth(5).textContent()).not.toBe('–');
    await shoot(page, 'alerts-attempts');
  });

  it('says what failed when no answer came: a refused connection is called that', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/nobody-listens`;
    await stack.db.sql`select public.alert_channel_save('refused-hook', 'webhook', ${closed})`;
    await stack.db.sql`select public.alert_channel_test('refused-hook')`;
    const failed = page.locator('.alerts-log tbody tr', { hasText: 'refused-hook' }).first();
    await expect.poll(() => failed.locator('.result').textContent(), { timeout: 30_000 }).toMatch(/^connection refused: nothing listens/);
    expect(await failed.locator('.result').textContent()).not.toContain('fetch failed');
  });

  it('deletes a channel after asking', async () => {
    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator('tr[data-channel="refused-hook"]').getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => page.locator('tr[data-channel="refused-hook"]').count(), { timeout: 15_000 }).toBe(0);
    expect((await stack.db.sql`select 1 from public.alert_channels where name = 'refused-hook'`).length).toBe(0);
  });

  it('in dark mode the forms are readable (no white on white): screenshots of adding a channel and of the attempts', async () => {
    const dark = await browser!.newContext({ viewport: { width: 1360, height: 860 }, colorScheme: 'dark' });
    const darkPage = await dark.newPage();
    try {
      await signIn(darkPage, `${served!.url}#/alerts`, stack.operator);
      await darkPage.getByRole('button', { name: 'Add channel' }).click();
      const colours = await darkPage.evaluate(() =>
        [...document.querySelectorAll<HTMLElement>('.alerts-pause-form input, .alerts-pause-form select, .channel-form input')].map(
          (input) => [getComputedStyle(input).backgroundColor, getComputedStyle(input).color],
        ),
      );
      expect(colours.length).toBeGreaterThan(3);
      for (const [background, colour] of colours) {
        expect(background).not.toBe('rgb(255, 255, 255)');
        expect(background).not.toBe(colour);
      }
      const form = darkPage.getByRole('form', { name: 'Add a channel' });
      await form.getByLabel('Name').fill('oncall-ntfy');
      await form.getByLabel('Kind').selectOption('ntfy');
      await form.getByLabel('Settings (JSON)').fill('{"topic": "agents-oncall"}');
      await shoot(darkPage, 'alerts-channel-add-dark');
      await darkPage.locator('.alerts-log tbody tr', { hasText: 'page-hook' }).first().locator('details.attempts summary').click();
      await darkPage.locator('.alerts-log').scrollIntoViewIfNeeded();
      await shoot(darkPage, 'alerts-attempts-dark');
    } finally {
      await dark.close();
    }
  });
});
