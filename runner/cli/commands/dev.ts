// `agent-status dev` (what `npm start` runs): the whole Supabase surface of agent-status on
// 127.0.0.1:54321 without Docker, printed and written to .agent-status/local.json.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Stack } from '../../local-stack/stack.ts';
import type { DatabaseChoice } from '../../local-stack/database.ts';
import {
  localDataDir,
  localStackFile,
  readLocalStackIfPresent,
  recordRunningStack,
  writeLocalStack,
} from '../../local-stack/connection-file.ts';
import { REPO_ROOT } from '../../paths.ts';
import { acquireLock, type Lock } from '../../daemon/lock.ts';
import type { Demo } from '../../local-stack/demo/demo.ts';

const OPERATOR_EMAIL = 'operator@agent-status.local';

function portNumber(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('must be a port number (1-65535).');
  return port;
}

interface DevOptions {
  port: number;
  db: 'pglite' | 'postgres';
  dbPort?: number;
  dataDir?: string;
  demo: boolean;
  build: boolean;
  legacyKeys?: boolean;
}

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

// The local stack's modules, loaded only when it runs: they need the development dependencies
// (PostgREST, Deno, PGlite, Vite), which a checkout has and the installed runner and CLI do not.
async function localStackModules() {
  try {
    const [stack, dashboard, demo] = await Promise.all([
      import('../../local-stack/stack.ts'),
      import('../../local-stack/dashboard-build.ts'),
      import('../../local-stack/demo/demo.ts'),
    ]);
    return { ...stack, ...dashboard, ...demo };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    console.error(
      `agent-status dev runs the local stack from a checkout of the repository (git clone, then npm ci and npm start); this installation has the runner and the CLI only (${(error as Error).message.split('\n')[0]})`,
    );
    process.exit(1);
  }
}

export async function runDev(options: DevOptions): Promise<void> {
  const startedAt = Date.now();
  const { startStack, buildDashboard, dashboardNeedsBuild, startDemo, DEMO_AGENTS, DEMO_HOST } = await localStackModules();
  const dataDir = localDataDir(options.dataDir);
  // Before anything touches the folder: two starts at once on a new folder both created the embedded
  // database in it and corrupted it ("Aborted()", "unexpected data beyond EOF"). local.json below is
  // written only once a stack is ready, too late to keep a second start out.
  mkdirSync(dataDir, { recursive: true });
  let lock: Lock;
  try {
    lock = acquireLock(join(dataDir, 'npm-start.lock'), {
      what: 'npm start',
      where: shown(dataDir),
      hint: 'stop it first (Ctrl+C in its terminal), or give this one its own folder with --data-dir',
    });
  } catch (error) {
    console.error(`npm start failed: ${(error as Error).message}`);
    process.exit(1);
  }
  // The lock above is what keeps a second stack off this folder; local.json only carries the keys over.
  const previous = readLocalStackIfPresent(dataDir);
  const dbPort = options.dbPort ?? options.port + 1;
  let database: DatabaseChoice;
  if (process.env.DATABASE_URL) {
    database = { kind: 'url', url: process.env.DATABASE_URL };
    if (options.db === 'postgres') console.log('DATABASE_URL is set, so --db postgres is ignored');
  } else if (options.db === 'postgres') {
    database = { kind: 'postgres', dataDir: join(dataDir, 'postgres'), port: dbPort };
  } else {
    database = { kind: 'pglite', dataDir: join(dataDir, 'pglite'), port: dbPort };
  }
  const operator = previous?.operator ?? { email: OPERATOR_EMAIL, password: randomBytes(12).toString('base64url') };

  const kind = { url: 'DATABASE_URL', pglite: 'embedded PGlite', postgres: 'PostgreSQL with pg_cron' }[database.kind];
  console.log(`agent-status local stack (${kind}, data in ${shown(dataDir)})`);
  // Built while the database starts; the stack serves whatever web/dist holds once it is done.
  let dashboard: Promise<void> = Promise.resolve();
  if (options.build && dashboardNeedsBuild()) {
    console.log('  · building the dashboard into web/dist');
    dashboard = buildDashboard().then(
      () => console.log('  · dashboard built'),
      (error: Error) => console.log(`  · the dashboard could not be built, so / shows a placeholder page: ${error.message}`),
    );
  }
  // Settles with the running stack, or undefined once the start failed (and said why).
  let exitCode = 0;
  let demo: Promise<Demo | undefined> | undefined;
  let forgetRunningStack = () => {};
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const stack: Promise<Stack | undefined> = startStack({
    port: options.port,
    database,
    jwtSecret: previous?.jwtSecret,
    keyStyle: options.legacyKeys ? 'legacy' : 'new',
    operator,
    watchFunctions: true,
    log: (line) => console.log(`  · ${line}`),
    childLog: (name, line) => {
      if (name !== 'PostgREST') console.log(`[${name}] ${line}`);
    },
    onCrash: (name, reason) => {
      console.error(`\nThe local stack stopped because ${name} ${reason}`);
      exitCode = 1;
      stopRequested();
    },
  }).catch((error: Error) => {
    console.error(`\nnpm start failed: ${error.message}`);
    exitCode = 1;
    stopRequested();
    return undefined;
  });

  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstSignalAt) {
      // One Ctrl+C arrives several times: from the terminal, and relayed by npm and tsx.
      if (Date.now() - firstSignalAt < 2_000) return;
      console.log(`${signal} again: stopping at once`);
      process.exit(130); // the exit hook of children.ts kills what is left
    }
    firstSignalAt = Date.now();
    console.log(`\n${signal}: stopping the local stack…`);
    stopRequested();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal); // the terminal was closed

  const started = await stack;
  await dashboard;
  if (started && !firstSignalAt && exitCode === 0) {
    writeLocalStack(
      {
        url: started.url,
        anonKey: started.anonKey,
        serviceKey: started.serviceKey,
        keyStyle: started.keyStyle,
        dbUrl: started.dbUrl,
        operator,
        database: started.databaseKind,
        jwtSecret: started.jwtSecret,
        pid: process.pid,
        startedAt: new Date().toISOString(),
      },
      dataDir,
    );
    forgetRunningStack = recordRunningStack(dataDir);
    const demoAgents = `${DEMO_AGENTS.map((a) => a.name).join(', ')} under a runner for host ${DEMO_HOST} (turn off with --no-demo)`;
    printReady(started, operator, dataDir, (Date.now() - startedAt) / 1000, options.demo ? demoAgents : 'off');
    if (options.demo) {
      demo = startDemo({
        url: started.url,
        anonKey: started.anonKey,
        sql: started.sql,
        dir: join(dataDir, 'demo'),
        log: (line) => console.log(`  · ${line}`),
      }).catch((error: Error) => {
        console.error(`The demo agents could not start (the stack runs on without them): ${error.message}`);
        return undefined;
      });
    }
  }

  await stopped;
  // The demo agents go first, so their last reports still reach the API; a demo still starting is
  // stopped once it has started.
  await (await demo)?.stop();
  await started?.stop();
  forgetRunningStack();
  lock.release();
  if (exitCode === 0) console.log('stopped.');
  process.exit(exitCode);
}

function printReady(stack: Stack, operator: { email: string; password: string }, dataDir: string, seconds: number, demoAgents: string) {
  const file = localStackFile(dataDir);
  // The CLI looks in $AGENT_STATUS_DATA_DIR, the default folder, then the stacks recorded as running
  // (recordRunningStack): a second stack elsewhere needs the variable to say which.
  const finds =
    dataDir === localDataDir()
      ? '(the CLI finds this stack and its operator by itself)'
      : `(the CLI finds this stack and its operator by itself while it is the only local stack running;\n  with several, say which: export AGENT_STATUS_DATA_DIR=${dataDir})`;
  const sweep = stack.sweepByPgCron ? 'pg_cron, every minute' : 'timer in this process, every 15 s';
  console.log(`
Ready in ${seconds.toFixed(1)} s.

  API          ${stack.url}  (/rest/v1, /functions/v1, /auth/v1)
  Dashboard    ${stack.url}/
  Functions    ${stack.functions().join(', ') || 'none yet (supabase/functions/<name>/index.ts)'}
  Database     ${stack.dbUrl}  (${stack.databaseKind}; sweep: ${sweep})
  ${stack.keyStyle === 'new' ? 'Publishable' : 'anon key   '}  ${stack.anonKey}
  ${stack.keyStyle === 'new' ? 'Secret key ' : 'service key'}  ${stack.serviceKey}
               (administrator key: never on agent hosts or in a browser)
  Operator     ${operator.email}  password ${operator.password}
  Demo agents  ${demoAgents}
  All of this  ${shown(file)}

Point an agent at it ${finds}:
  npx agent-status token create agent --name my-agent     prints the agent's token, once
  AGENT_STATUS_TOKEN=<token> npx agent-status run --name my-agent -- <your program>
  or, for an agent using the SDK: AGENT_STATUS_URL=${stack.url} AGENT_STATUS_TOKEN=<token> AGENT_NAME=my-agent

Press Ctrl+C to stop.`);
}

export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('run the whole API locally without Docker: database, PostgREST, edge functions, sign-in, dashboard')
    .option('--port <port>', 'API gateway port on 127.0.0.1', portNumber, 54321)
    .addOption(new Option('--db <kind>', 'database when DATABASE_URL is not set').choices(['pglite', 'postgres']).default('pglite'))
    .option('--db-port <port>', 'database port on 127.0.0.1 (default: API port + 1)', portNumber)
    .option(
      '--data-dir <path>',
      `where the database and local.json live (default: $AGENT_STATUS_DATA_DIR or ${shown(join(REPO_ROOT, '.agent-status'))})`,
    )
    .option('--no-demo', 'do not start the demo agents')
    .option('--no-build', 'serve web/dist as it is instead of building the dashboard when its sources changed')
    .option(
      '--legacy-keys',
      'issue anon/service_role JWT keys and HS256 sessions instead of sb_publishable_/sb_secret_ keys and ES256 sessions',
    )
    .action((options: DevOptions) => runDev(options));
}
