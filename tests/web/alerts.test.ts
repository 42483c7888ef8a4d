// The Alerts page in headless Chromium against a stack whose own timer runs the real dispatcher, with
// a receiver on 127.0.0.1 as the channels' endpoint: masked secrets, "Send test" reaching the
// receiver, the log with failures first, and "Pause alerts" recorded in the database.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
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
