// The demo `npm start` runs (unless --no-demo) so the dashboard's first screen is alive: the real
// host runner (`agent-status runner`) supervising three demo agents (demo/agent.ts, on the SDK),
// with a runner token made through the SQL API. The flaky agent fails now and then; the runner
// reports the crash and restarts it, as it would on a real host. The runner itself is a child like
// PostgREST and Deno: once up, an exit restarts it with backoff, and the new one adopts the agents
// still running (their processes are in groups of their own, and its state folder remembers them).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from 'postgres';
import { stringify } from 'yaml';
import { Supervisor } from '../children.ts';
import { CLI_ENTRY, REPO_ROOT } from '../../paths.ts';
import { waitUntil } from '../wait.ts';

export const DEMO_AGENTS = [
  { name: 'demo-healthy', behaviour: 'healthy' },
  { name: 'demo-drifting', behaviour: 'drifting' },
  { name: 'demo-flaky', behaviour: 'flaky' },
] as const;

export const DEMO_HOST = 'npm-start-demo';
const TOKEN_LABEL = 'npm start demo runner';
const HERE = dirname(fileURLToPath(import.meta.url));

export interface Demo {
  stop(): Promise<void>;
}

// A fresh runner token per start, naming the demo's agents; the previous start's is revoked first.
async function runnerToken(sql: Sql): Promise<string> {
  const old = await sql<{ id: string }[]>`select id from public.list_api_tokens() where label = ${TOKEN_LABEL} and revoked_at is null`;
  for (const { id } of old) await sql`select from public.revoke_api_token(${id})`;
  const [{ token }] = await sql<{ token: string }[]>`select token from public.create_api_token('runner', ${TOKEN_LABEL}, null, ${DEMO_HOST},
    p_agents => ${DEMO_AGENTS.map((agent) => agent.name)})`;
  return token;
}

/** The runner's config file, as a user would write one for a host (runner/README.md). */
function writeRunnerConfig(dir: string, url: string, anonKey: string, token: string, intervalMs: number): string {
  mkdirSync(dir, { recursive: true });
  const tokenFile = join(dir, 'runner.token');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  chmodSync(tokenFile, 0o600);
  const config = {
    supabase: { url, anon_key: anonKey, token_file: 'runner.token' },
    runner: { state_dir: 'state', poll_interval: '1s', heartbeat_interval: '10s', stop_agents_on_exit: true },
    agents: DEMO_AGENTS.map((agent) => ({
      name: agent.name,
      command: process.execPath,
      args: ['--import', 'tsx', join(HERE, 'agent.ts')],
      cwd: REPO_ROOT,
      env: { DEMO_BEHAVIOUR: agent.behaviour, DEMO_INTERVAL_MS: intervalMs },
      autostart: true,
      restart: 'on-failure',
      stop_timeout: '5s',
      backoff: { initial: '3s', max: '30s', max_retries: 1000 },
    })),
  };
  const file = join(dir, 'runner.yaml');
  writeFileSync(file, `# Written by npm start for its demo agents; rewritten at every start.\n${stringify(config)}`);
  return file;
}

export async function startDemo(options: {
  url: string;
  anonKey: string;
  sql: Sql;
  /** the demo's config, state and agent logs go here */
  dir: string;
  log: (line: string) => void;
  intervalMs?: number;
}): Promise<Demo> {
  const token = await runnerToken(options.sql);
  const config = writeRunnerConfig(options.dir, options.url, options.anonKey, token, options.intervalMs ?? 5_000);
  // The demo is a nicety: if its runner cannot start, say so and let the stack run on.
  let exitedEarly = '';
  const supervisor = new Supervisor((name, reason, restartInMs) => {
    if (restartInMs !== undefined) {
      options.log(`${name} ${reason}\n    restarting it in ${(restartInMs / 1000).toFixed(1)} s; it adopts the demo agents still running`);
      return;
    }
    exitedEarly = reason;
    options.log(`the demo stopped: ${name} ${reason}`);
  });
  let supervising = false;
  const runner = supervisor.spawn({
    name: 'the demo runner',
    command: process.execPath,
    args: ['--import', 'tsx', CLI_ENTRY, 'runner', '--config', config],
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    installHint: 'Run npm install.',
    onLine: (line) => {
      if (/: supervising /.test(line)) {
        supervising = true;
        runner.ready();
      }
      options.log(`[demo runner] ${line.replace(/^\S+Z /, '')}`);
    },
    // it stops its agents first (stop_agents_on_exit), each within its stop_timeout
    stopTimeoutMs: 20_000,
  });
  // The runner handles SIGTERM (stopping its agents) only once it is fully started; stopping it
  // earlier would leave the agents it already started running.
  try {
    await waitUntil('the demo runner starting', async () => supervising, { timeoutMs: 60_000, failed: () => exitedEarly || undefined });
  } catch (error) {
    await supervisor.stopAll();
    throw error;
  }
  return { stop: () => supervisor.stopAll() };
}
