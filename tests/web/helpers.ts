// The dashboard as a browser gets it, for tests and the bench: a fresh production build (into a
// temporary folder, so parallel runs never share web/dist), served over HTTP with a config.js that
// points at a real stack, and opened in the system's headless Chromium.
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { freePort } from '../../runner/local-stack/ports.ts';
import { serveStatic } from '../../runner/local-stack/static-files.ts';

export const REPO = resolve(import.meta.dirname, '../..');
export const ARTIFACTS = join(REPO, 'tests/artifacts');

/** Builds web/ with its own Vite config into a new temporary folder; returns that folder. */
export async function buildDashboard(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'agent-status-web-'));
  await build({
    configFile: join(REPO, 'web/vite.config.ts'),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
  return outDir;
}

export interface ServedDashboard {
  url: string;
  close(): Promise<void>;
}

/** Serves a build on 127.0.0.1, with /config.js naming this stack the way a static host's would. */
export async function serveDashboard(
  dir: string,
  config: { supabaseUrl: string; supabaseAnonKey: string; realtime?: boolean },
): Promise<ServedDashboard> {
  const configJs = `window.AGENT_STATUS_CONFIG = ${JSON.stringify(config)};\n`;
  const server: Server = createServer((request, response) => {
    if (new URL(request.url ?? '/', 'http://local').pathname === '/config.js') {
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
      response.end(configJs);
      return;
    }
    serveStatic(request, response, [dir]);
  });
  const port = await freePort();
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', done);
  });
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

// What CI's Debian chromium needs headless: no sandbox (containers), and nothing that phones home.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The system's Chromium; launch() gives it a fresh temporary user-data-dir, removed on close. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** Collects what the page logs as errors, so a failing test can print the browser's side. */
export function watchConsole(page: Page): string[] {
  const lines: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') lines.push(`[console.${message.type()}] ${message.text()}`);
  });
  page.on('pageerror', (error) => lines.push(`[pageerror] ${error.message}`));
  return lines;
}

export async function signIn(page: Page, url: string, user: { email: string; password: string }): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: options.fullPage ?? true });
  return path;
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
