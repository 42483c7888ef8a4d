// The local stack: database, PostgREST, edge functions under Deno, the auth stand-in and the gateway
// in front of them, started in order and stopped in reverse. `npm start` (dev.ts) and the test harness
// (tests/helpers/stack.ts) both run exactly this.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { Supervisor } from './children.ts';
import { startDatabase, type DatabaseChoice, type Database } from './database.ts';
import { startPostgrest } from './postgrest.ts';
import { FUNCTIONS_DIR } from '../paths.ts';
import { listFunctions, startFunction, type ServedFunction, type FunctionEnv } from './functions.ts';
import { createAuthApp, createAuthUser } from './auth.ts';
import { Gateway, type FunctionTarget } from './gateway.ts';
import { createJwtSecret, createStackKeys, type KeyStyle } from './keys.ts';
import { startSweepTimer } from './sweep.ts';
import { startAlertTimer } from './alerts.ts';
import { assertPortFree } from './port-check.ts';
import { assertNoLeftoverServer } from './postgres-cluster.ts';

export interface StackOptions {
  /** gateway port on 127.0.0.1 (54321 for npm start) */
  port: number;
  database: DatabaseChoice;
  /** serve supabase/functions (default true) */
  functions?: boolean;
  /** reload a function when its code changes (default false: tests want a crash to be a crash) */
  watchFunctions?: boolean;
  /** run the sweep on a timer when pg_cron does not (default true) */
  sweep?: boolean;
  /** how often that timer runs (default SWEEP_INTERVAL_MS) */
  sweepIntervalMs?: number;
  /** call the alert dispatcher on a timer and on each queued delivery, as pg_cron + pg_net would (default true) */
  alerts?: boolean;
  /** how often that timer runs (default ALERT_INTERVAL_MS) */
  alertIntervalMs?: number;
  /** keep keys stable across restarts by passing the previous secret */
  jwtSecret?: string;
  /**
   * 'new' (default): sb_publishable_/sb_secret_ API keys and ES256 sessions with a JWKS, as Supabase
   * projects issue now; 'legacy': anon and service_role JWT keys and HS256 sessions.
   */
  keyStyle?: KeyStyle;
  /** a user who can sign in and is on the operator list */
  operator?: { email: string; password: string };
  /** progress lines */
  log?: (line: string) => void;
  /** what the children print, by child name */
  childLog?: (name: string, line: string) => void;
  /** a child could not start (or the database is gone for good); the stack has already stopped itself */
  onCrash?: (name: string, reason: string) => void;
}

export interface Stack {
  url: string;
  /** the publishable key (sb_publishable_..., or the anon JWT with legacy keys) */
  anonKey: string;
  /** the secret key (sb_secret_..., or the service_role JWT with legacy keys) */
  serviceKey: string;
  keyStyle: KeyStyle;
  jwtSecret: string;
  /** superuser URL of the database (SUPABASE_DB_URL) */
  dbUrl: string;
  databaseKind: Database['kind'];
  /** whether pg_cron runs the sweep (else the stack's timer does, if enabled) */
  sweepByPgCron: boolean;
  /** the stack's own superuser connection */
  sql: Sql;
  gateway: Gateway;
  /** the functions served so far */
  functions(): string[];
  /** the child processes (PostgREST, functions) with their current process ids */
  children(): { name: string; pid: number }[];
  createUser(email: string, password: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.log ?? (() => {});
  const cleanups: (() => Promise<void> | void)[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (error) {
          log(`while stopping: ${(error as Error).message}`);
        }
      }
    })());

  // Exits after stop() began (a Ctrl+C in a terminal also reaches a PostgreSQL server directly) are
  // part of stopping. A child that was up is restarted by the supervisor: one line says which and why.
  // A child that could not start stops the stack, and is reported.
  const crashed = (name: string, reason: string, restartInMs?: number) => {
    if (stopping) return;
    if (restartInMs !== undefined) {
      log(`${name} ${reason}\n    restarting it in ${(restartInMs / 1000).toFixed(1)} s`);
      return;
    }
    void stop().then(() => options.onCrash?.(name, reason));
  };
  const supervisor = new Supervisor(crashed);
  cleanups.push(() => supervisor.stopAll());

  try {
    await assertPortFree(options.port, 'the API gateway', '--port');
    if (options.database.kind === 'postgres') assertNoLeftoverServer(options.database.dataDir);
    if (options.database.kind !== 'url') await assertPortFree(options.database.port, 'the database', '--db-port');
    const jwtSecret = options.jwtSecret ?? createJwtSecret();
    const keys = await createStackKeys(jwtSecret, options.keyStyle ?? 'new');
    const anonKey = keys.publishableKey;
    const serviceKey = keys.secretKey;
    const url = `http://127.0.0.1:${options.port}`;

    // PostgREST retries a lost database with a backoff that grows to half a minute; once a restarted
    // server takes connections, a SIGUSR1 (reload) makes it reconnect at once.
    let nudgePostgrest = () => {};
    const database = await startDatabase(options.database, log, crashed, () => nudgePostgrest());
    // The database stops after every child is gone (cleanups run in reverse).
    cleanups.splice(0, 0, () => database.stop());

    if (options.operator) {
      await createAuthUser(database.sql, options.operator.email, options.operator.password);
      await database.sql`select public.add_operator(${options.operator.email})`;
    }

    log('starting PostgREST');
    const postgrest = await startPostgrest({
      supervisor,
      authenticatorUrl: database.authenticatorUrl,
      jwtSecret: keys.postgrestSecret,
      preparedStatements: database.kind !== 'pglite',
      log: (line) => options.childLog?.('PostgREST', line),
    });

    // What a deployed function gets: the legacy key names, or the new ones (and the JWKS).
    nudgePostgrest = () => {
      const pid = supervisor.running().find((child) => child.name === 'PostgREST')?.pid;
      try {
        if (pid && pid > 0) process.kill(pid, 'SIGUSR1');
      } catch {
        // PostgREST is itself being restarted, and connects when it is up
      }
    };

    // The alert timer's key for the dispatch function: given to the function, not stored in the
    // database, which may be a project's own (DATABASE_URL) with its own dispatch key and target.
    const dispatchKey = randomBytes(32).toString('base64url');
    const functionEnv: FunctionEnv = {
      SUPABASE_URL: url,
      SUPABASE_DB_URL: database.url,
      // no pooler here: the one local database is reached directly, as the secret would name the pooler
      AGENT_STATUS_DB_URL: database.url,
      AGENT_STATUS_DISPATCH_KEY: dispatchKey,
      ...keys.functionEnv(),
    };
    const served = new Map<string, Promise<ServedFunction>>();
    const serve = (name: string) => {
      let started = served.get(name);
      if (!started) {
        log(`starting edge function ${name}`);
        started = startFunction(name, {
          supervisor,
          env: functionEnv,
          watch: options.watchFunctions,
          log: (line) => options.childLog?.(name, line),
        });
        served.set(name, started);
      }
      return started;
    };
    const serveFunctions = options.functions ?? true;
    if (serveFunctions) {
      const names = listFunctions();
      if (!names.length) log(`no edge functions under ${FUNCTIONS_DIR} yet`);
      await Promise.all(names.map(serve));
    }
    // A function created while the stack runs is started on its first request.
    const functionTarget = async (name: string): Promise<FunctionTarget | string> => {
      if (!serveFunctions) return 'this stack does not serve edge functions (started with functions: false)';
      if (!served.has(name) && !(/^[\w-]+$/.test(name) && existsSync(join(FUNCTIONS_DIR, name, 'index.ts')))) {
        return `no edge function "${name}": create supabase/functions/${name}/index.ts`;
      }
      const fn = await serve(name);
      return { port: fn.port, verifyJwt: fn.verifyJwt };
    };

    const gateway = new Gateway({
      port: options.port,
      postgrestPort: postgrest.port,
      auth: createAuthApp({ sql: database.sql, keys }),
      keys,
      functionTarget,
      // no Realtime here (design: the dashboard polls): told, so it does not try the socket
      dashboardConfig: { supabaseUrl: url, supabaseAnonKey: anonKey, realtime: false },
    });
    await gateway.start();
    cleanups.push(() => gateway.stop());

    const sweepByPgCron = database.hasSweepJob;
    if (!sweepByPgCron && (options.sweep ?? true)) {
      const timer = startSweepTimer(database, log, options.sweepIntervalMs);
      cleanups.push(() => timer.stop());
    }

    if (serveFunctions && (options.alerts ?? true)) {
      const alerts = await startAlertTimer({ database, url, dispatchKey, log, intervalMs: options.alertIntervalMs });
      cleanups.push(() => alerts.stop());
    }

    return {
      url,
      anonKey,
      serviceKey,
      keyStyle: keys.style,
      jwtSecret,
      dbUrl: database.url,
      databaseKind: database.kind,
      sweepByPgCron,
      sql: database.sql,
      gateway,
      functions: () => [...served.keys()],
      children: () => supervisor.running(),
      createUser: (email, password) => createAuthUser(database.sql, email, password),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
