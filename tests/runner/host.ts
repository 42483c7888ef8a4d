// A host for end-to-end tests: a runner token, a config file, and the runner (in this process, or as
// its own process for tests that kill it), against the test file's stack; plus the database reads
// and the process-table checks the tests assert on.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { Sql } from 'postgres';
import { stringify } from 'yaml';
import { afterEach } from 'vitest';
import { parseConfig } from '../../runner/daemon/config.ts';
import { processEnvironment, processInfo } from '../../runner/daemon/proc.ts';
import { Runner, type RunnerOptions } from '../../runner/daemon/runner.ts';
import { postOverSocket } from '../../shared/sdk/unix-socket.ts';
import { isFinished } from '../../shared/status.ts';
import type { TestStack } from '../helpers/stack.ts';
import { FIXTURES, tempDir, waitFor } from './helpers.ts';

const REPO = resolve(import.meta.dirname, '../..');
const runners: Runner[] = [];
const processes: ResultPromise[] = [];
const agentNames: string[] = [];

afterEach(async () => {
  for (const runner of runners.splice(0)) await runner.shutdown({ stopAgents: true });
  for (const child of processes.splice(0)) {
    child.kill('SIGKILL');
    await child;
  }
  // whatever a test left running (a killed runner's agents) goes too
  for (const name of agentNames.splice(0)) for (const pid of agentProcesses(name)) process.kill(-pid, 'SIGKILL');
});

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A fixture agent entry for a config file. */
export function fixtureAgent(fixture: string, extra: Record<string, unknown> = {}) {
  const name = uniqueName(fixture.replace(/\.\w+$/, ''));
  agentNames.push(name);
  return { name, command: join(FIXTURES, fixture), min_uptime: '300ms', ...extra };
}

export interface Host {
  host: string;
  token: string;
  configFile: string;
  stateDir: string;
  /** runs the runner in this process; its log lines go to `log` */
  start(log?: (line: string) => void, options?: Omit<RunnerOptions, 'config' | 'log'>): Promise<Runner>;
  /**
   * Runs the runner as its own process, resolved once it said it is ready. (Wrapped in an object:
   * an async function returning execa's thenable would wait for the process to end.)
   */
  spawn(): Promise<{ process: ResultPromise }>;
}

/**
 * A host with its runner token and config. `sameHostAs` gives the second host the first one's token
 * and name with its own state folder: a second runner the lock file cannot see.
 */
export async function makeHost(
  stack: TestStack,
  agents: Record<string, unknown>[],
  runner: Record<string, unknown> = {},
  sameHostAs?: Host,
  supabase: Record<string, unknown> = {},
): Promise<Host> {
  const host = sameHostAs?.host ?? uniqueName('host');
  const token: string =
    sameHostAs?.token ??
    (await stack.db.sql`select token from public.create_api_token('runner', p_host => ${host}, p_new_agents => true)`)[0].token;
  const dir = tempDir();
  const stateDir = join(dir, 'state');
  const configFile = join(dir, 'agents.yaml');
  writeFileSync(
    configFile,
    stringify({
      supabase: { url: stack.url, anon_key: stack.anonKey, ...supabase },
      runner: { state_dir: stateDir, poll_interval: '100ms', check_interval: '200ms', scan_interval: '1s', ...runner },
      agents,
    }),
  );
  const env = { AGENT_STATUS_RUNNER_TOKEN: token };
  return {
    host,
    token,
    configFile,
    stateDir,
    async start(log = () => {}, options = {}) {
      const config = parseConfig(readFileSync(configFile, 'utf8'), configFile, { env });
      const started = await Runner.start({ config, log, ...options });
      runners.push(started);
      return started;
    },
    async spawn() {
      // node itself with tsx's loader (not the tsx wrapper, which is a second process): a signal
      // sent to this pid reaches the runner
      const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'runner/daemon/main.ts'), 'runner', '--config', configFile], {
        cwd: REPO,
        env,
        reject: false,
        cleanup: true,
        all: true,
        buffer: { all: true },
      });
      processes.push(child);
      let output = '';
      child.all!.on('data', (chunk) => (output += chunk));
      const exited = child.then(() => {
        throw new Error(`the runner exited before it was ready:\n${output}`);
      });
      const ready = waitFor(`the runner to be ready (its output so far:\n${output})`, () => /supervising/.test(output), 20_000);
      await Promise.race([ready, exited]);
      exited.catch(() => {});
      return { process: child };
    },
  };
}

/** Enqueues a command as the service would; returns its id. */
export async function enqueue(sql: Sql, action: string, agent: string): Promise<number> {
  const [command] = await sql`select id from public.enqueue_agent_commands(${action}, ${agent})`;
  return Number(command.id);
}

/** Waits until the command finished; returns its status and result. */
export async function finished(sql: Sql, id: number, timeoutMs = 15_000): Promise<{ status: string; result: string }> {
  return waitFor(
    `command ${id} to finish`,
    async () => {
      const [row] = await sql`select status, result from public.agent_commands where id = ${id}`;
      return isFinished(row.status) ? { status: row.status as string, result: row.result as string } : undefined;
    },
    timeoutMs,
  );
}

export async function agent(sql: Sql, name: string) {
  const [row] =
    await sql`select status, pid, exit_code, exit_signal, status_reason, last_error from public.agent_status where agent_name = ${name}`;
  return row as {
    status: string;
    pid: number | null;
    exit_code: number | null;
    exit_signal: string | null;
    status_reason: string | null;
    last_error: string | null;
  };
}

export async function events(sql: Sql, name: string) {
  return sql`select e.kind, e.message, e.details, e.to_status from public.agent_events e
             join public.agent_status a on a.id = e.agent_id where a.agent_name = ${name} order by e.id`;
}

/** Process group leaders the runner started for this agent (AGENT_NAME in their environment). */
export function agentProcesses(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = processInfo(Number(entry));
    if (!info || info.state === 'Z' || info.pgid !== info.pid) continue;
    if (processEnvironment(info.pid)?.get('AGENT_NAME') === name) pids.push(info.pid);
  }
  return pids;
}

/** POSTs to the agent channel a supervised process was given (AGENT_STATUS_SOCKET in its environment). */
export async function channelPost(env: Map<string, string>, path: 'heartbeat' | 'report', body: unknown, token?: string) {
  const response = await postOverSocket(env.get('AGENT_STATUS_SOCKET')!, `${env.get('AGENT_STATUS_URL')}/functions/v1/${path}`, {
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, json: await response.json() };
}
