// `npm start` as a user runs it: a child process on a fresh data folder, ready, a heartbeat over HTTP
// with a token made through the stack, read back with supabase-js as the operator, then Ctrl+C and
// nothing left running. Once on embedded PGlite (also across a restart), once on PostgreSQL + pg_cron.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, afterAll } from 'vitest';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import psList from 'ps-list';
import { execa } from 'execa';
import postgres from 'postgres';
import { freePort } from '../../runner/local-stack/ports.ts';
import { REPO_ROOT } from '../../runner/paths.ts';
import { readLocalStack, runningStacksDir, writeLocalStack, type LocalStackInfo } from '../../runner/local-stack/connection-file.ts';
import { waitUntil } from '../../runner/local-stack/wait.ts';

const READY_TIMEOUT_MS = 120_000;
// This file's own per-user state (where running stacks record themselves for the CLI), so stacks
// other test files or other people start on this machine are not found here.
const stateHome = mkdtempSync(join(tmpdir(), 'agent-status-state-'));
process.env.XDG_STATE_HOME = stateHome;
const dataDirs: string[] = [stateHome];
const running = new Set<ChildProcess>();

afterAll(async () => {
  // A test that failed half-way leaves its stack running: stop it as a user would, then for sure.
  for (const child of running) {
    const closed = new Promise((resolve) => child.once('close', resolve));
    try {
      process.kill(-child.pid!, 'SIGINT');
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 20_000))]);
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-npm-start-'));
  // As root, PostgreSQL runs as the postgres user, who must be able to reach its folder inside.
  chmodSync(dir, 0o755);
  dataDirs.push(dir);
  return dir;
}

interface NpmStart {
  dataDir: string;
  child: ChildProcess;
  output: () => string;
  /** milliseconds from spawning `npm start` to its ready line */
  readyAfterMs: number;
  info: LocalStackInfo;
}

function spawnNpmStart(args: string[]) {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  // Its own process group, like a shell job: SIGINT to the group is what Ctrl+C in a terminal sends.
  const child = spawn('npm', ['start', '--', ...args], { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const closed = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return { child, output: () => output, closed };
}

async function npmStart(dataDir: string, args: string[] = [], options: { demo?: boolean } = {}): Promise<NpmStart> {
  const started = Date.now();
  // --no-build: tests/web covers the dashboard build; parallel builds into web/dist would collide.
  const ports = ['--port', String(await freePort()), '--db-port', String(await freePort()), '--no-build'];
  const { child, output: outputSoFar } = spawnNpmStart(['--data-dir', dataDir, ...ports, ...(options.demo ? [] : ['--no-demo']), ...args]);
  let output = '';
  child.stdout!.on('data', () => (output = outputSoFar()));
  child.stderr!.on('data', () => (output = outputSoFar()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`npm start was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${output}`)),
      READY_TIMEOUT_MS,
    );
    const onData = () => {
      if (/^Ready in /m.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (code ${code}) before it was ready:\n${output}`));
    });
  });
  const readyAfterMs = Date.now() - started;
  console.log(`npm start ${args.join(' ')} ready after ${(readyAfterMs / 1000).toFixed(1)} s`);
  return { dataDir, child, output: outputSoFar, readyAfterMs, info: readLocalStack(dataDir) };
}

/** Every process below pid, found through parent ids. */
async function descendants(pid: number): Promise<{ pid: number; name: string }[]> {
  const all = await psList();
  const found: { pid: number; name: string }[] = [];
  let frontier = [pid];
  while (frontier.length) {
    const children = all.filter((p) => frontier.includes(p.ppid));
    found.push(...children.map((p) => ({ pid: p.pid, name: p.name })));
    frontier = children.map((p) => p.pid);
  }
  return found;
}

/**
 * Ctrl+C, as a terminal sends it (SIGINT to the whole foreground process group), or SIGTERM as a
 * service manager sends it; then checks that the stack said it stopped and that no process it
 * started is left.
 */
async function pressCtrlC(started: NpmStart, signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
  const before = await descendants(started.child.pid!);
  expect(before.map((p) => p.name)).toEqual(expect.arrayContaining(['postgrest']));
  // 'close' comes once every process holding npm's stdout (the stack too) has exited.
  const closed = new Promise<void>((resolve) => started.child.once('close', () => resolve()));
  process.kill(-started.child.pid!, signal);
  await closed;
  expect(started.output()).toMatch(/^stopped\.$/m);
  // it no longer tells the CLI it runs
  expect(existsSync(join(runningStacksDir(), `${started.info.pid}.json`))).toBe(false);
  expect(await processesLeft(before), `processes left after ${signal}:\n${started.output()}`).toEqual([]);
}

/** Which of these processes still run: an exited one may linger an instant as a zombie, not longer. */
async function processesLeft(before: { pid: number; name: string }[]) {
  const running = async () =>
    (await psList()).filter((p) => before.some((b) => b.pid === p.pid && b.name === p.name) && !p.cmd?.includes('<defunct>'));
  await waitUntil('the stopped processes gone', async () => (await running()).length === 0, { timeoutMs: 5_000 }).catch(() => {});
  return running();
}

function supabase(info: LocalStackInfo) {
  return createClient(info.url, info.anonKey, {
    realtime: { transport: WebSocket as never },
    auth: { persistSession: false, autoRefreshToken: false },
  });
}

/** As the operator: an agent token made through the stack, a heartbeat with it, and the row read back. */
async function heartbeatRoundTrip(info: LocalStackInfo, agentName: string) {
  const operator = supabase(info);
  expect((await operator.auth.signInWithPassword(info.operator)).error).toBeNull();
  const created = await operator.rpc('create_api_token', { p_kind: 'agent', p_agent_name: agentName });
  expect(created.error).toBeNull();
  const token = created.data[0].token as string;

  const response = await fetch(`${info.url}/functions/v1/heartbeat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ agent_name: agentName, status: 'running', health: 77, last_activity: 'testing npm start' }),
  });
  expect(response.status, await response.clone().text()).toBe(200);

  const read = await operator.from('agent_status').select('agent_name, status, health, last_activity').eq('agent_name', agentName);
  expect(read.error).toBeNull();
  expect(read.data).toEqual([{ agent_name: agentName, status: 'running', health: 77, last_activity: 'testing npm start' }]);
}

describe('npm start', () => {
  it('runs on embedded PGlite with its demo agents, serves a heartbeat end to end and leaves nothing behind on Ctrl+C', async () => {
    const started = await npmStart(freshDataDir(), [], { demo: true });
    expect(started.info.database).toBe('pglite');
    await heartbeatRoundTrip(started.info, 'npm-start-pglite');

    // the first screen is alive: the operator sees the three demo agents reporting
    const operator = supabase(started.info);
    await operator.auth.signInWithPassword(started.info.operator);
    await waitUntil(
      'the demo agents reporting',
      async () => {
        const { data } = await operator.from('agent_status').select('agent_name, last_heartbeat').like('agent_name', 'demo-%');
        return data?.length === 3 && data.every((agent) => agent.last_heartbeat !== null);
      },
      { timeoutMs: 30_000 },
    );

    // the demo agents log like real agents, so logs on demand shows lines; the CLI finds a stack
    // started with --data-dir by itself, as the banner says: no AGENT_STATUS_DATA_DIR
    const cliEnv: NodeJS.ProcessEnv = { ...process.env };
    delete cliEnv.AGENT_STATUS_URL;
    delete cliEnv.AGENT_STATUS_DATA_DIR;
    const agentStatus = (args: string[]) =>
      execa('node', [join(REPO_ROOT, 'runner/bin/agent-status.js'), ...args], { env: cliEnv, reject: false });
    expect(started.output()).toContain('the CLI finds this stack and its operator by itself while it is the only local stack running');
    // a record left by a stack that was killed outright is ignored, and removed
    const stale = join(runningStacksDir(), `${2 ** 22 + 1}.json`);
    writeFileSync(stale, JSON.stringify({ dataDir: freshDataDir(), pid: 2 ** 22 + 1 }));
    const logs = await agentStatus(['logs', 'demo-healthy', '-n', '5']);
    expect(logs.stderr).toBe('');
    expect(logs.stdout).toMatch(/^\S+ INFO demo-healthy: (starting|processed)/m);
    const listed = await agentStatus(['list', '--json']);
    expect(listed.stderr).toBe('');
    expect(JSON.parse(listed.stdout).map((agent: { agent_name: string }) => agent.agent_name)).toContain('demo-healthy');
    expect(existsSync(stale)).toBe(false);
    // with two stacks running, the CLI asks which instead of guessing
    const other = freshDataDir();
    writeLocalStack({ ...started.info, pid: process.pid }, other);
    writeFileSync(join(runningStacksDir(), `${process.pid}.json`), JSON.stringify({ dataDir: other, pid: process.pid }));
    const ambiguous = await agentStatus(['list']);
    expect(ambiguous.exitCode).toBe(2);
    expect(ambiguous.stderr).toContain('2 local stacks are running');
    expect(ambiguous.stderr).toContain(`export AGENT_STATUS_DATA_DIR=`);
    rmSync(join(runningStacksDir(), `${process.pid}.json`));

    await pressCtrlC(started);
    // the demo agents said goodbye before the API went away
    const { data: after } = await (async () => {
      const restarted = await npmStart(started.dataDir);
      try {
        const reader = supabase(restarted.info);
        await reader.auth.signInWithPassword(restarted.info.operator);
        return await reader.from('agent_status').select('agent_name, status').like('agent_name', 'demo-%').order('agent_name');
      } finally {
        await pressCtrlC(restarted);
      }
    })();
    expect(after?.map((agent) => agent.status)).toEqual(['stopped', 'stopped', 'stopped']);
  }, 240_000);

  it('keeps the PGlite data across a restart without re-applying migrations', async () => {
    const dataDir = freshDataDir();
    const first = await npmStart(dataDir);
    expect(first.output()).toMatch(/applied migration/);
    await heartbeatRoundTrip(first.info, 'survives-restart');

    // while it runs, a second npm start on the same folder refuses, saying why
    const twice = spawnNpmStart([
      '--data-dir',
      dataDir,
      '--port',
      String(await freePort()),
      '--db-port',
      String(await freePort()),
      '--no-demo',
      '--no-build',
    ]);
    expect(await twice.closed).toBe(1);
    expect(twice.output()).toMatch(
      /another npm start \(pid \d+\) is running with .*; stop it first \(Ctrl\+C in its terminal\), or give this one its own folder with --data-dir/,
    );
    await pressCtrlC(first);

    const second = await npmStart(dataDir);
    expect(second.output()).not.toMatch(/applied migration/);
    expect(second.output()).toMatch(/database schema is up to date/);
    // same keys and operator as before, so nothing that was configured has to change
    expect(second.info.anonKey).toBe(first.info.anonKey);
    const operator = supabase(second.info);
    expect((await operator.auth.signInWithPassword(second.info.operator)).error).toBeNull();
    const read = await operator.from('agent_status').select('agent_name, health').eq('agent_name', 'survives-restart');
    expect(read.data).toEqual([{ agent_name: 'survives-restart', health: 77 }]);
    await pressCtrlC(second);
  }, 240_000);

  it('runs on a private PostgreSQL with pg_cron scheduling the sweep, and stops on SIGTERM', async () => {
    const started = await npmStart(freshDataDir(), ['--db', 'postgres']);
    expect(started.info.database).toBe('postgres');
    expect(started.output()).toMatch(/sweep: pg_cron/);
    const sql = postgres(started.info.dbUrl, { max: 1, onnotice: () => {} });
    try {
      const jobs = await sql`select schedule, command from cron.job where jobname = 'agent-status-sweep'`;
      expect(jobs).toEqual([{ schedule: '* * * * *', command: 'select public.agent_status_sweep()' }]);
    } finally {
      await sql.end();
    }
    await heartbeatRoundTrip(started.info, 'npm-start-postgres');
    await pressCtrlC(started, 'SIGTERM');
  }, 240_000);

  it('restarts a child that crashes, with a line naming it, and still stops everything it started', async () => {
    const started = await npmStart(freshDataDir(), [], { demo: false });
    const before = await descendants(started.child.pid!);
    const postgrest = before.find((p) => p.name === 'postgrest')!;
    process.kill(postgrest.pid, 'SIGKILL');
    await waitUntil('a line about PostgREST', async () => /PostgREST exited unexpectedly \(signal SIGKILL\)/.test(started.output()), {
      timeoutMs: 10_000,
    });
    expect(started.output()).toMatch(/restarting it in 0\.5 s/);
    const { url, anonKey } = started.info;
    await waitUntil('PostgREST answering again', async () => (await fetch(`${url}/rest/v1/`, { headers: { apikey: anonKey } })).ok, {
      timeoutMs: 20_000,
    });
    await heartbeatRoundTrip(started.info, 'npm-start-after-crash');
    const after = await descendants(started.child.pid!);
    expect(after.find((p) => p.name === 'postgrest')?.pid).not.toBe(postgrest.pid);
    await pressCtrlC(started, 'SIGTERM');
    expect(await processesLeft(before)).toEqual([]);
  }, 240_000);

  it('says so when the port is taken, before starting anything', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const run = spawnNpmStart(['--data-dir', freshDataDir(), '--port', String(port), '--no-demo']);
      expect(await run.closed).toBe(1);
      expect(run.output()).toMatch(new RegExp(`port ${port} on 127.0.0.1 \\(for the API gateway\\) is already in use.*--port`));
    } finally {
      blocker.close();
    }
  }, 60_000);

  it('two npm start at once on a new folder: one runs, the other is told and touches nothing', async () => {
    const dataDir = freshDataDir();
    const args = async () => [
      '--data-dir',
      dataDir,
      '--port',
      String(await freePort()),
      '--db-port',
      String(await freePort()),
      '--no-demo',
      '--no-build',
    ];
    const [first, second] = [spawnNpmStart(await args()), spawnNpmStart(await args())];
    // whichever took the folder's lock first runs; the other exits 1 naming it
    const loser = await Promise.race([first.closed.then(() => first), second.closed.then(() => second)]);
    const winner = loser === first ? second : first;
    expect(loser.output()).toMatch(
      /npm start failed: another npm start \(pid \d+\) is running with .* \(lock .*npm-start\.lock\); stop it first/,
    );
    await waitUntil('the other to be ready', async () => /^Ready in /m.test(winner.output()), { timeoutMs: READY_TIMEOUT_MS });
    const started: NpmStart = { dataDir, child: winner.child, output: winner.output, readyAfterMs: 0, info: readLocalStack(dataDir) };
    await pressCtrlC(started);
    // the folder it made is sound: a later start opens it
    await pressCtrlC(await npmStart(dataDir));
  }, 240_000);

  it('a damaged data folder is reported with the path to delete', async () => {
    const dataDir = freshDataDir();
    mkdirSync(join(dataDir, 'pglite', 'base'), { recursive: true });
    writeFileSync(join(dataDir, 'pglite', 'PG_VERSION'), 'not a version\n');
    const run = spawnNpmStart([
      '--data-dir',
      dataDir,
      '--port',
      String(await freePort()),
      '--db-port',
      String(await freePort()),
      '--no-demo',
      '--no-build',
    ]);
    expect(await run.closed).toBe(1);
    expect(run.output()).toContain(`the embedded database in ${join(dataDir, 'pglite')} cannot be opened`);
    expect(run.output()).toContain(`Delete it to start from an empty database (rm -rf ${join(dataDir, 'pglite')})`);
  }, 60_000);
});
