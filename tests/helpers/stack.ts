// The whole local API for a test file: its own cloned database (tests/helpers/database.ts) behind the
// same PostgREST, Deno functions, auth stand-in and gateway that `npm start` runs
// (runner/local-stack/stack.ts), on a free port.
import { randomBytes } from 'node:crypto';
import { beforeAll, afterAll } from 'vitest';
import { useTestDatabase, type TestDatabase } from './database.ts';
import { startStack, type Stack } from '../../runner/local-stack/stack.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import type { KeyStyle } from '../../runner/local-stack/keys.ts';

export interface TestStack {
  /** gateway base, http://127.0.0.1:<port> (/rest/v1, /functions/v1, /auth/v1) */
  url: string;
  anonKey: string;
  serviceKey: string;
  /** this file's own cloned database (db.sql is a superuser client) */
  db: TestDatabase;
  /** can sign in, and is in public.operators */
  operator: { email: string; password: string };
  /** a user who can sign in but is not an operator */
  createUser(email: string, password: string): Promise<void>;
  /** takes the whole API down and up again on the same port (for "service down" tests) */
  gateway: { stop(): Promise<void>; start(): Promise<void> };
}

export interface TestStackOptions {
  /** serve supabase/functions through Deno (slower to start; default false) */
  functions?: boolean;
  /** run the sweep on a 15 s timer (default false: tests call public.agent_status_sweep() themselves) */
  sweep?: boolean;
  /** the stack's key style (default 'new': sb_publishable_/sb_secret_ keys, ES256 sessions) */
  keyStyle?: KeyStyle;
  /** call the alert dispatcher on a timer and on each queued delivery (default false: tests call it themselves) */
  alerts?: boolean;
  alertIntervalMs?: number;
}

/** Registers beforeAll/afterAll hooks that start and stop this file's stack. */
export function useTestStack(options: TestStackOptions = {}): TestStack {
  const db = useTestDatabase();
  let stack: Stack | undefined;
  let crash: string | undefined;
  const testStack = {
    db,
    operator: { email: 'operator@agent-status.test', password: randomBytes(12).toString('base64url') },
    async createUser(email: string, password: string) {
      await stack!.createUser(email, password);
    },
    gateway: {
      stop: () => stack!.gateway.stop(),
      start: () => stack!.gateway.start(),
    },
  } as TestStack;

  beforeAll(async () => {
    stack = await startOnAFreePort((port) =>
      startStack({
        port,
        database: { kind: 'url', url: db.url },
        functions: options.functions ?? false,
        sweep: options.sweep ?? false,
        keyStyle: options.keyStyle,
        alerts: options.alerts ?? false,
        alertIntervalMs: options.alertIntervalMs,
        operator: testStack.operator,
        // A child that crashed and is restarted does not fail the file, but says so.
        log: (line) => /restarting it in/.test(line) && console.error(`local stack: ${line}`),
        // What functions print helps a failing test; PostgREST's start-up lines do not (a crash quotes them).
        childLog: (name, line) => name !== 'PostgREST' && console.log(`[${name}] ${line}`),
        onCrash: (name, reason) => {
          crash = `${name} ${reason}`;
          console.error(`local stack stopped: ${crash}`);
        },
      }),
    );
    Object.assign(testStack, { url: stack.url, anonKey: stack.anonKey, serviceKey: stack.serviceKey });
  });

  afterAll(async () => {
    await stack?.stop();
    if (crash) throw new Error(`the local stack crashed during this file: ${crash}`);
  });

  return testStack;
}

/**
 * Starts what binds a port, on one that was free a moment ago, and on another if something took that
 * one first. Test files run side by side and each picks ports at random; a CI run lost a whole file
 * when another process took the gateway's port between freePort() and the gateway's listen.
 */
async function startOnAFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (error) {
      if (attempt >= 3 || !/is already in use/.test((error as Error).message)) throw error;
    }
  }
}

/**
 * Calls a SQL API function through the stack's PostgREST with the publishable key, as the CLI and the
 * dashboard do: the HTTP status and the body (code, message, details, hint on failure) as answered.
 */
export async function postgrestRpc(stack: TestStack, fn: string, args: Record<string, unknown>) {
  const response = await fetch(`${stack.url}/rest/v1/rpc/${fn}`, {
    method: 'POST',
    headers: { apikey: stack.anonKey, authorization: `Bearer ${stack.anonKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(args),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}
