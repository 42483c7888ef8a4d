#!/usr/bin/env node
// `npx agent-status`: runs the TypeScript CLI in this same process through tsx's loader, so there is
// no build step and signals (Ctrl+C, a runner's SIGTERM) reach the CLI directly, not a wrapper.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
