// What a newcomer sees after `npm start`: the demo agents (runner/local-stack/demo) under the real
// `agent-status runner`, reporting through the SDK and the edge functions, on the dashboard.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { useTestStack } from '../helpers/stack.ts';
import { DEMO_AGENTS, startDemo, type Demo } from '../../runner/local-stack/demo/demo.ts';
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

const stack = useTestStack({ functions: true });
let dir: string | undefined;
let demoDir: string | undefined;
let served: ServedDashboard | undefined;
let browser: Browser | undefined;
let demo: Demo | undefined;

beforeAll(async () => {
  dir = await buildDashboard();
  served = await serveDashboard(dir, { supabaseUrl: stack.url, supabaseAnonKey: stack.anonKey });
  browser = await launchChromium();
  demoDir = mkdtempSync(join(tmpdir(), 'agent-status-demo-'));
  demo = await startDemo({ url: stack.url, anonKey: stack.anonKey, sql: stack.db.sql, dir: demoDir, log: () => {}, intervalMs: 1000 });
}, 120_000);

afterAll(async () => {
  await demo?.stop();
  await browser?.close();
  await served?.close();
  removeDir(dir);
  removeDir(demoDir);
}, 60_000);

it('shows the demo agents live, with their host, activity and health', async () => {
  const page = await browser!.newPage({ viewport: { width: 1360, height: 700 } });
  const logs = watchConsole(page);
  try {
    await signIn(page, served!.url, stack.operator);
    for (const { name } of DEMO_AGENTS) {
      const row = page.locator(`.rows [data-agent="${name}"]`);
      await expect.poll(() => row.locator('.chip').textContent(), { timeout: 30_000 }).toMatch(/running|warning|error/);
      await expect.poll(() => row.locator('.activity').textContent(), { timeout: 15_000 }).toMatch(/^processed \d+ items$/);
      expect(await row.locator('.host').textContent()).toBe('npm-start-demo');
      expect(await row.getByRole('button', { name: `Stop ${name}` }).isDisabled()).toBe(false);
    }
    await screenshot(page, 'dashboard-demo');
  } catch (error) {
    console.log(`browser output:\n${logs.join('\n') || '(none)'}`);
    throw error;
  } finally {
    await page.close();
  }
}, 90_000);
