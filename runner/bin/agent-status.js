#!/usr/bin/env node
// `agent-status`. In a checkout it runs the TypeScript CLI in this same process through tsx's loader,
// so there is no build step; the installed package (npm pack) has no TypeScript and runs the bundle
// `npm run build:runner` made. Either way signals (Ctrl+C, a runner's SIGTERM) reach the CLI directly.
import { existsSync } from 'node:fs';

const source = new URL('../cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../../dist/agent-status.mjs', import.meta.url).href);
}
