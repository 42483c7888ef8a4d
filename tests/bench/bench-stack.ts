// What the end-to-end benchmarks share: a private PostgreSQL cluster with its own database behind the
// local stack (functions served by Deno), token minting, detached children killed with their groups
// and everything carrying the run's marker at the end, and waiting on a probe with a bound.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import postgres from 'postgres';
import { startPostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { startStack } from '../../runner/local-stack/stack.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something; throws naming `what` after timeoutMs. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

export interface BenchStack {
  stack: Awaited<ReturnType<typeof startStack>>;
  sql: Awaited<ReturnType<typeof startStack>>['sql'];
  /** a temporary folder, removed at the end */
  dir: string;
  /** a token; a runner token may add new agent names (the benches' configs name new agents) */
  token(kind: string, scope: { agent?: string; host?: string }): Promise<string>;
  /** a detached child in the repository's folder; it and its group are killed at the end */
  spawn(file: string, args: string[], env: Record<string, string>, cwd: string): ResultPromise;
}

// Kills every process whose environment holds the marker. Every child spawned here has it, and a
// runner's agents inherit the runner's environment: they run in process groups of their own (so they
// outlive a runner restart), so when a bench SIGKILLs a runner, killing its group does not reach
// them (a forever.sh outlived the edges bench).
function killMarked(marker: string): void {
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/environ`).includes(marker)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
}

/** Runs `body` against a fresh stack with the edge functions; stops everything afterwards. */
export async function withBenchStack(name: string, body: (bench: BenchStack) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `agent-status-bench-${name}-`));
  const cluster = await startPostgresCluster({});
  let stack: Awaited<ReturnType<typeof startStack>> | undefined;
  const children: ResultPromise[] = [];
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database bench_${name}`);
    await admin.end();
    stack = await startStack({
      port: await freePort(),
      database: { kind: 'url', url: cluster.urlFor(`bench_${name}`) },
      functions: true,
      sweep: false,
    });
    const { sql } = stack;
    await body({
      stack,
      sql,
      dir,
      token: async (kind, scope) =>
        (
          await sql`select token from public.create_api_token(${kind}, null, ${scope.agent ?? null}, ${scope.host ?? null},
                      p_new_agents => ${kind === 'runner'})`
        )[0].token as string,
      spawn: (file, args, env, cwd) => {
        const child = execa(file, args, {
          cwd,
          env: { ...env, AGENT_STATUS_BENCH_RUN: dir },
          reject: false,
          stdio: 'ignore',
          detached: true,
        });
        children.push(child);
        return child;
      },
    });
  } finally {
    for (const child of children) {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    killMarked(`AGENT_STATUS_BENCH_RUN=${dir}`);
    await stack?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
