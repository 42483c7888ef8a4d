// The local stack under ordinary faults, as `supabase start` users know them: a child killed with -9
// comes back with a line saying which and why; a database restarted under load (pg_ctl restart, or
// the server killed) is served again by PostgREST and the functions without restarting the stack;
// the cluster the stack started never outlives it, and a leftover one is named with its stop command.
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPostgresBinaries, runningPostmaster, stopCommand } from '../../runner/local-stack/postgres-cluster.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { startStack, type Stack } from '../../runner/local-stack/stack.ts';
import { waitUntil } from '../../runner/local-stack/wait.ts';
import { REPO_ROOT } from '../../runner/paths.ts';
import { createToken } from '../helpers/agents.ts';
import type { TestStack } from '../helpers/stack.ts';
import { agent, fixtureAgent, makeHost } from '../runner/host.ts';
import { heartbeat as heartbeatOf, heartbeatLoad } from './heartbeat-load.ts';

const run = promisify(execFile);
const base = mkdtempSync(join(tmpdir(), 'agent-status-faults-'));
chmodSync(base, 0o755); // as root, PostgreSQL runs as the postgres user, who must reach its folder
const dataDir = join(base, 'pg', 'data');
const lines: string[] = [];
const crashes: string[] = [];
let stack: Stack;
let dbPort: number;
let tokens: string[] = [];

async function start() {
  return startStack({
    port: await freePort(),
    database: { kind: 'postgres', dataDir: join(base, 'pg'), port: dbPort },
    operator: { email: 'operator@agent-status.test', password: 'operator-password' },
    log: (line) => lines.push(line),
    onCrash: (name, reason) => crashes.push(`${name} ${reason}`),
  });
}

beforeAll(async () => {
  dbPort = await freePort();
  stack = await start();
  tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => createToken(stack.sql, 'agent', { agent: `fault-agent-${i}` })));
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(base, { recursive: true, force: true });
});

const agents = () => tokens.map((token, i) => ({ name: `fault-agent-${i}`, token }));
const heartbeat = (i: number) => heartbeatOf(stack.url, agents()[i]);

async function restRead(): Promise<boolean> {
  try {
    const response = await fetch(`${stack.url}/rest/v1/agent_status?select=agent_name&limit=1`, {
      headers: { apikey: stack.serviceKey },
      signal: AbortSignal.timeout(5_000),
    });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** The 20 agents heartbeating every intervalMs until stopped. */
const load = (intervalMs = 100) => heartbeatLoad(stack.url, agents(), intervalMs);

/** After a fault at faultAt: heartbeats and PostgREST answer again; the time until the last failure. */
async function recovery(name: string, faultAt: number, traffic: ReturnType<typeof load>) {
  // A bound on "it comes back", not a speed claim: after kill -9 the old server's backends linger
  // until they notice, and each refused start doubles the wait (20 s seen alone, over 60 s once in a
  // full run on this 2-core machine).
  await waitUntil(`${name}: heartbeats and PostgREST reads succeed again`, async () => (await heartbeat(0)) && (await restRead()), {
    timeoutMs: 100_000,
  });
  // a few more rounds of load once it is back, so late failures count too
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  await traffic.stop();
  const { sent, failed, lastFailureAt } = traffic.stats();
  const recoveredMs = failed ? lastFailureAt - faultAt : 0;
  console.log(`${name}: ${failed} of ${sent} heartbeats failed; the last failure ${recoveredMs} ms after the fault`);
  expect(crashes).toEqual([]);
}

function asPostgres(command: string, args: string[]) {
  return process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', command, ...args]) : run(command, args);
}

describe('a child killed with -9', () => {
  it('PostgREST and each function are restarted with a line saying which and why, and answer again', async () => {
    // this stack's own children only: other stacks may run on this machine
    const targets = stack.children();
    expect(targets.length).toBeGreaterThan(3);
    for (const target of targets) {
      process.kill(target.pid, 'SIGKILL');
      await waitUntil(
        `a line about ${target.name}`,
        async () => lines.some((l) => l.startsWith(`${target.name} exited unexpectedly (signal SIGKILL)`)),
        {
          timeoutMs: 10_000,
        },
      );
      expect(lines.find((l) => l.startsWith(`${target.name} exited`))).toMatch(/restarting it in \d+\.\d s/);
    }
    await waitUntil('heartbeats and PostgREST reads succeed again', async () => (await heartbeat(1)) && (await restRead()), {
      timeoutMs: 60_000,
    });
    expect(crashes).toEqual([]);
  }, 150_000);
});

function restartDatabase() {
  const pgCtl = join(findPostgresBinaries().bindir, 'pg_ctl');
  return asPostgres(pgCtl, ['restart', '-D', dataDir, '-m', 'fast', '-l', join(base, 'pg', 'restart.log')]);
}

describe('the database restarted under load', () => {
  it('pg_ctl restart -m fast under 20 agents × 1/s, three times: every agent is answered again within 20 s', async () => {
    // On main before the guarded pool, /heartbeat answered 503 for minutes after such a restart: a
    // heartbeat batch given up while its connection was reconnecting wedged the connection.
    for (let round = 1; round <= 3; round++) {
      const traffic = load(1_000);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const faultAt = Date.now();
      await restartDatabase();
      const restartedAt = Date.now();
      // A liveness bound, not a speed claim: a late call is given up after 5 s and its pool replaced.
      await waitUntil(`round ${round}: every agent's heartbeat answered again`, async () => traffic.allAnsweredSince(restartedAt), {
        timeoutMs: 20_000,
      });
      // a few more rounds once it is back, so late failures count too
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      await traffic.stop();
      const { sent, failed, lastFailureAt } = traffic.stats();
      const recoveredS = failed ? (lastFailureAt - faultAt) / 1000 : 0;
      console.log(
        `pg_ctl restart round ${round}: ${failed} of ${sent} heartbeats failed; restart took ${((restartedAt - faultAt) / 1000).toFixed(1)} s, the last failure ${recoveredS.toFixed(1)} s after it began`,
      );
      expect(recoveredS).toBeLessThan((restartedAt - faultAt) / 1000 + 20);
    }
    expect(crashes).toEqual([]);
  }, 150_000);

  it('pg_ctl restart: the new server is adopted, PostgREST, the functions and a runner reconnect', async () => {
    // a runner with one agent, heartbeating every second
    const entry = fixtureAgent('forever.sh', { autostart: true });
    const asTestStack = { url: stack.url, anonKey: stack.anonKey, db: { sql: stack.sql } } as unknown as TestStack;
    const host = await makeHost(asTestStack, [entry], { heartbeat_interval: '1s' });
    await host.start();
    await waitUntil('the runner’s agent running', async () => (await agent(stack.sql, entry.name))?.status === 'running', {
      timeoutMs: 20_000,
    });
    const traffic = load();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = runningPostmaster(dataDir)!.pid;
    const faultAt = Date.now();
    await restartDatabase();
    await recovery('pg_ctl restart', faultAt, traffic);
    const after = runningPostmaster(dataDir)!.pid;
    expect(after).not.toBe(before);
    expect(
      lines.some((l) => /PostgreSQL was shut down from outside the stack; it was started again outside the stack \(pid \d+/.test(l)),
    ).toBe(true);
    // the runner carried on: seen again after the restart, its agent still running
    await waitUntil(
      'the runner seen after the restart',
      async () => {
        const [row] = await stack.sql`select last_seen_at from public.runners where host = ${host.host}`;
        return row && row.last_seen_at.getTime() > Date.now() - 2_000;
      },
      { timeoutMs: 30_000 },
    );
    expect((await agent(stack.sql, entry.name))?.status).toBe('running');
  }, 150_000);

  it('the server killed with -9: the stack starts it again', async () => {
    const traffic = load();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const faultAt = Date.now();
    process.kill(runningPostmaster(dataDir)!.pid, 'SIGKILL');
    await recovery('postgres kill -9', faultAt, traffic);
    expect(lines.some((l) => /^PostgreSQL .*exited.*\n {4}restarting it in/s.test(l))).toBe(true);
  }, 150_000);
});

describe('the cluster never outlives the stack', () => {
  it('is stopped with the stack, even the one pg_ctl put in place; a leftover is named with its stop command', async () => {
    await stack.stop();
    expect(runningPostmaster(dataDir)).toBeUndefined();

    // a leftover, as an earlier run killed with -9 (before the kernel's signal) or a manual start leaves it
    const pgCtl = join(findPostgresBinaries().bindir, 'pg_ctl');
    await asPostgres(pgCtl, [
      'start',
      '-D',
      dataDir,
      '-l',
      join(base, 'pg', 'leftover.log'),
      '-o',
      `-p ${dbPort} -k ${join(base, 'pg', 'socket')}`,
    ]);
    const error = await start().then(
      (started) => started.stop().then(() => 'started'),
      (e: Error) => e.message,
    );
    expect(error).toContain(`a PostgreSQL server left over from an earlier run still serves ${dataDir}`);
    expect(error).toContain(stopCommand(dataDir));
    const [command, ...args] = stopCommand(dataDir).split(' ');
    await run(command, args);
    expect(runningPostmaster(dataDir)).toBeUndefined();
  }, 150_000);

  it('goes when the process that started it is killed with SIGKILL', async () => {
    const script = `
      import { startPostgresCluster } from ${JSON.stringify(join(REPO_ROOT, 'runner', 'local-stack', 'postgres-cluster.ts'))};
      const cluster = await startPostgresCluster({ dataDir: ${JSON.stringify(join(base, 'pg2'))} });
      console.log(cluster.dataDir);
      setInterval(() => {}, 1000);`;
    const owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const ownDataDir = await new Promise<string>((resolve) =>
      owner.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())),
    );
    expect(runningPostmaster(ownDataDir)).toBeDefined();
    owner.kill('SIGKILL');
    await waitUntil('the server gone after its owner was killed', async () => runningPostmaster(ownDataDir) === undefined, {
      timeoutMs: 15_000,
    });
  }, 60_000);
});
