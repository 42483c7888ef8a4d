// The traps a new operator met in the dashboard (issue 21), in headless Chromium against a real
// stack: a page for an unknown agent that kept (and saved to) the agent viewed before it, timeouts
// that could not be reset to the default, and the rest found in the first hour.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { useTestStack } from '../helpers/stack.ts';
import { registerRunner, setAgentState } from '../helpers/agents.ts';
import { buildDashboard, launchChromium, removeDir, serveDashboard, signIn, watchConsole, type ServedDashboard } from './helpers.ts';

const stack = useTestStack();
let dir: string | undefined;
let served: ServedDashboard | undefined;
let browser: Browser | undefined;
let context: BrowserContext;
let page: Page;
let logs: string[];

beforeAll(async () => {
  dir = await buildDashboard();
  // as the local stack's own config.js says: no Realtime here
  served = await serveDashboard(dir, { supabaseUrl: stack.url, supabaseAnonKey: stack.anonKey, realtime: false });
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

async function openDashboard(hash = '') {
  await signIn(page, served!.url + hash, stack.operator);
  await page.locator('.live').waitFor();
}

async function timeoutsOf(name: string) {
  const [agent] = await sql()`
    select heartbeat_timeout_s, heartbeat_timeout_source from public.agent_status_live where agent_name = ${name}`;
  return agent;
}

describe('an agent’s page', () => {
  it('for an unknown name holds nothing of the agent viewed before it: no chip, no controls, no timeouts to save', async () => {
    await setAgentState(sql(), 'Viewed Before', 'running');
    const before = await timeoutsOf('Viewed Before');
    await openDashboard('#/agents/Viewed%20Before');
    const detail = page.locator('section.detail');
    await expect.poll(() => detail.locator('.detail-head .chip').textContent()).toContain('running');
    await page.getByLabel('Heartbeat timeout (s)').fill('77');

    await page.evaluate(() => (location.hash = '#/agents/no-such-agent'));
    await expect.poll(() => detail.locator('[role="alert"]').textContent()).toMatch(/no agent named .?no-such-agent/i);
    expect(await detail.locator('h2').textContent()).toBe('no-such-agent');
    for (const hidden of ['.detail-head .chip', '.detail-controls', '.facts', 'form.timeouts', '.history']) {
      expect(await detail.locator(hidden).isVisible(), `${hidden} is hidden`).toBe(false);
    }
    expect(await page.getByRole('button', { name: 'Save timeouts' }).isVisible()).toBe(false);
    // Enter in the form (or a script's click) saves nothing either: the form holds no agent.
    await page.evaluate(() => document.querySelector<HTMLFormElement>('form.timeouts')!.requestSubmit());
    await new Promise((done) => setTimeout(done, 1000));
    expect(await timeoutsOf('Viewed Before')).toEqual(before);
    const [{ count }] = await sql()`select count(*)::int as count from public.agent_events where kind = 'timeouts_set'`;
    expect(count).toBe(0);

    // Once an agent of that name appears, its page shows it (and only it).
    await setAgentState(sql(), 'no-such-agent', 'error');
    await expect.poll(() => detail.locator('.detail-head .chip').textContent(), { timeout: 15_000 }).toContain('error');
    expect(await detail.locator('[role="alert"]').isVisible()).toBe(false);
    expect(await page.getByLabel('Heartbeat timeout (s)').inputValue()).not.toBe('77');
  }, 60_000);

  it('resets a timeout to the default with 0, and a refused value replaces the old "saved"', async () => {
    await setAgentState(sql(), 'Reset Timeouts', 'running');
    const derived = await timeoutsOf('Reset Timeouts');
    await openDashboard('#/agents/Reset%20Timeouts');
    const state = page.locator('.timeouts [role="status"]');
    await page.getByLabel('Heartbeat timeout (s)').fill('45');
    await page.getByRole('button', { name: 'Save timeouts' }).click();
    await expect.poll(() => state.textContent()).toBe('saved; the history records it');
    expect(await timeoutsOf('Reset Timeouts')).toEqual({ heartbeat_timeout_s: 45, heartbeat_timeout_source: 'operator' });

    await page.getByLabel('Heartbeat timeout (s)').fill('3');
    expect(await state.textContent()).toBe('');
    await page.getByRole('button', { name: 'Save timeouts' }).click();
    await expect.poll(() => state.textContent()).toContain('heartbeat timeout must be 5..86400 seconds');
    expect(await state.getAttribute('class')).toContain('failed');

    await page.getByLabel('Heartbeat timeout (s)').fill('0');
    await page.getByRole('button', { name: 'Save timeouts' }).click();
    await expect.poll(() => state.textContent()).toBe('saved; the history records it');
    expect(await timeoutsOf('Reset Timeouts')).toEqual(derived);
    await expect
      .poll(() => page.getByLabel('Heartbeat timeout (s)').inputValue(), { timeout: 15_000 })
      .toBe(String(derived.heartbeat_timeout_s));
  }, 60_000);
});

describe('the rest of the first hour', () => {
  it('opens no Realtime socket where the stack has none: no failed WebSocket in the console, polling said', async () => {
    await setAgentState(sql(), 'Quiet Console', 'running');
    await openDashboard();
    await page.locator('.rows [data-agent="Quiet Console"]').waitFor();
    await new Promise((done) => setTimeout(done, 3000));
    expect(logs.filter((line) => /WebSocket|realtime/i.test(line))).toEqual([]);
    expect(await page.locator('.live').textContent()).toMatch(/Polling/);
  }, 60_000);

  it('each filter change is a history entry: Back undoes it and stays in the app', async () => {
    await setAgentState(sql(), 'Back Button Agent', 'running');
    await openDashboard();
    await page.locator('.rows [data-agent="Back Button Agent"]').waitFor();
    const start = page.url();
    await page.getByLabel('Status', { exact: true }).selectOption('running');
    await expect.poll(() => page.url()).toContain('status=running');
    await page.getByRole('button', { name: 'Uptime', exact: true }).click();
    await expect.poll(() => page.url()).toContain('sort=uptime');
    await page.goBack();
    await expect.poll(() => page.url()).not.toContain('sort=uptime');
    expect(page.url()).toContain('status=running');
    await page.goBack();
    await expect.poll(() => page.getByLabel('Status', { exact: true }).inputValue()).toBe('');
    expect(page.url()).toBe(start);
    expect(await page.locator('.live').isVisible()).toBe(true);
  }, 60_000);

  it('shows what is paused: a banner on every page, a mark on its row, and on the agent’s page', async () => {
    await setAgentState(sql(), 'Paused Agent', 'running');
    await setAgentState(sql(), 'Unpaused Agent', 'running');
    await sql()`select public.alert_pause('Paused Agent', null, null, 'deploying')`;
    await openDashboard();
    const banner = page.locator('.paused-banner');
    await expect.poll(() => banner.textContent(), { timeout: 20_000 }).toContain('Alerts paused: Paused Agent until resumed');
    const mark = (name: string) =>
      page.locator(`.rows [data-agent="${name}"] .c-name`).evaluate((cell) => getComputedStyle(cell, '::after').content);
    expect(await mark('Paused Agent')).toBe('"alerts paused"');
    expect(await mark('Unpaused Agent')).toBe('none');
    await page.evaluate(() => (location.hash = '#/agents/Paused%20Agent'));
    await expect
      .poll(() => page.locator('section.detail .paused-mark').textContent(), { timeout: 15_000 })
      .toBe('Alerts paused until resumed');
    expect(await banner.isVisible()).toBe(true);
  }, 60_000);

  it('shows a restart reason whole at 1440 px, and the Hosts table scrolls inside its box on a phone', async () => {
    await setAgentState(sql(), 'Restarting Agent', 'error');
    const reason = 'exited with code 1 after 0.3 s; restarting in 8 s (restart 3 in 10 min)';
    await sql()`update public.agent_status set status_reason = ${reason} where agent_name = 'Restarting Agent'`;
    await page.setViewportSize({ width: 1440, height: 900 });
    await openDashboard();
    const shown = page.locator('.rows [data-agent="Restarting Agent"] .reason');
    await expect.poll(() => shown.textContent(), { timeout: 15_000 }).toBe(reason);
    const fits = await shown.evaluate((el) => el.scrollHeight <= el.clientHeight + 1 && el.scrollWidth <= el.clientWidth + 1);
    expect(fits).toBe(true);

    await registerRunner(sql(), 'a-host-with-a-long-name-01', ['Restarting Agent']);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate(() => (location.hash = '#/hosts'));
    await page.locator('.hosts table').waitFor();
    const overflow = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth - window.innerWidth,
      tableScrolls: getComputedStyle(document.querySelector('.hosts table')!).overflowX,
    }));
    expect(overflow.page).toBeLessThanOrEqual(0);
    expect(overflow.tableScrolls).toBe('auto');
  }, 60_000);
});
