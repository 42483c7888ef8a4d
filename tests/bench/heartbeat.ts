// Heartbeat throughput and latency at 1, 8 and 32 concurrent clients through the deployed-style path
// (the heartbeat function under Deno -> its direct, batching connection -> PostgreSQL), next to two
// references measured in the same run on the same private cluster:
//   - pgbench -M prepared: the same heartbeat (public.agent_heartbeat, one agent and token per
//     client) sent straight into PostgreSQL, the ceiling the issue compares against;
//   - PostgREST RPC: POST /rpc/agent_heartbeat, one statement per heartbeat; the function could only
//     be slower than this if it went through PostgREST, which is why it connects directly.
// Then what a heartbeat costs PostgreSQL inside a batch of 50 (CPU of the cluster's processes per
// item, pgbench at one client), three ways in the same run: agent_heartbeat_batch; the per-item
// path it took before (agent_private.heartbeat_batch_item, apply_event, for each); and the floor, a
// plain set-based UPDATE of the same rows with the token check. And pgbench's batched ceiling (4
// clients, 50-batches of agent_heartbeat_batch) against the function at 32 clients.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { startPostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { startDatabase } from '../../runner/local-stack/database.ts';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { startPostgrest } from '../../runner/local-stack/postgrest.ts';
import { startFunction } from '../../runner/local-stack/functions.ts';
import { createJwtSecret, signApiKey } from '../../runner/local-stack/keys.ts';
import { closedLoop, percentile, postRequest, type LoadResult } from './load.ts';
import { createBenchAgents } from './agents.ts';
import { runningPostmaster } from '../../runner/local-stack/postgres-cluster.ts';

const LEVELS = [1, 8, 32];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP_SECONDS = 1;
// Other work on the machine comes and goes; each cell is measured this many times, interleaved with
// the other paths, and the best round counts (the capacity of the path, not of the neighbours).
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PGBENCH = process.env.PGBENCH ?? '/usr/bin/pgbench';

interface Cell {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU µs per request of each part, where measured (the function at 32 clients) */
  cpu?: CpuSplit;
}

/** CPU of each process on the path: seconds used so far, or µs per heartbeat over a window. */
interface CpuSplit {
  loadGenerator: number;
  deno: number;
  postgres: number;
}

/** Reads the CPU seconds of the bench process, the function's process group and the cluster. */
function cpuWindow(denoPid: number, dataDir: string) {
  const read = (): CpuSplit => {
    const own = process.cpuUsage();
    return { loadGenerator: (own.user + own.system) / 1e6, deno: groupCpuSeconds(denoPid), postgres: clusterCpuSeconds(dataDir) };
  };
  let start: CpuSplit | undefined;
  let end: CpuSplit | undefined;
  return {
    window: { start: () => (start = read()), end: () => (end = read()) },
    perRequest(requests: number): CpuSplit {
      const per = (part: keyof CpuSplit) => ((end![part] - start![part]) / requests) * 1e6;
      return { loadGenerator: per('loadGenerator'), deno: per('deno'), postgres: per('postgres') };
    },
  };
}

function cell(result: LoadResult): Cell {
  const sorted = result.latenciesMs.sort((a, b) => a - b);
  if (result.errors) console.log(`  ${result.errors} failed requests, the first: ${result.firstError}`);
  return { rps: result.requests / result.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors: result.errors };
}

// pgbench with a per-transaction log, so its p50/p99 are computed the same way as the HTTP ones.
async function pgbench(url: string, clients: number, script: string, dir: string): Promise<Cell & { transactions: number }> {
  for (const file of readdirSync(dir).filter((f) => f.startsWith('pgbench_log'))) rmSync(join(dir, file));
  const args = [
    '-n',
    '-M',
    'prepared',
    '-c',
    String(clients),
    '-j',
    String(Math.min(clients, 2)),
    '-T',
    String(SECONDS),
    '-f',
    script,
    '-l',
    `--log-prefix=${join(dir, 'pgbench_log')}`,
    url,
  ];
  const { stdout } = await promisify(execFile)(PGBENCH, args, { timeout: (SECONDS + 30) * 1000 });
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1]);
  if (!tps) throw new Error(`could not read tps from pgbench:\n${stdout}`);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
  const latencies: number[] = [];
  for (const file of readdirSync(dir).filter((f) => f.startsWith('pgbench_log'))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      const microseconds = Number(line.split(' ')[2]);
      if (line && Number.isFinite(microseconds)) latencies.push(microseconds / 1000);
    }
  }
  latencies.sort((a, b) => a - b);
  return { rps: tps, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors: 0, transactions };
}

// CPU seconds, from /proc, of the processes `counts` picks (given each one's pid and the fields of its
// stat after the command's closing parenthesis: state ppid pgrp ... utime(11) stime(12) cutime(13)
// cstime(14)), each with the CPU of its children, live or reaped, that `counts` says to include.
function cpuSeconds(counts: (pid: number, fields: string[]) => 'self' | 'self and reaped children' | undefined): number {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const which = counts(Number(entry), fields);
    if (which) total += Number(fields[11]) + Number(fields[12]);
    if (which === 'self and reaped children') total += Number(fields[13]) + Number(fields[14]);
  }
  return total / ticks;
}

// CPU seconds used so far by the cluster's processes: the postmaster's own and its live children's,
// plus those of the children it has reaped (cutime, cstime), so a backend that exits (pgbench's, at
// its end) still counts.
function clusterCpuSeconds(dataDir: string): number {
  const postmaster = runningPostmaster(dataDir)?.pid;
  if (!postmaster) throw new Error(`no PostgreSQL server serves ${dataDir}`);
  return cpuSeconds((pid, fields) =>
    pid === postmaster ? 'self and reaped children' : Number(fields[1]) === postmaster ? 'self' : undefined,
  );
}

// CPU seconds used so far by a supervised child's process group (the Supervisor starts each child
// detached, as the leader of its own group): Deno and every thread and process it runs.
function groupCpuSeconds(leader: number): number {
  return cpuSeconds((_, fields) => (Number(fields[2]) === leader ? 'self and reaped children' : undefined));
}

// One batch of 50 steady heartbeats as JSON, built in SQL from pgbench's client id.
const BATCH_JSON = `(select jsonb_agg(jsonb_build_object('token', 'asa_batch_' || :client_id || '_' || i, 'agent_name', 'bench-batch-' || :client_id || '-' || i))
  from generate_series(0, 49) i)`;
// The indexes agent_status had on columns a heartbeat writes, put back for one measurement: with
// them no heartbeat is a heap-only update (supabase/schemas/10_tables.sql).
const WRITTEN_COLUMN_INDEXES = ['stale_at', 'inactive_at', 'updated_at'];
const SQL_PATHS: { name: string; sql: string; before?: string; after?: string }[] = [
  { name: 'agent_heartbeat_batch', sql: `select public.agent_heartbeat_batch(${BATCH_JSON});` },
  {
    name: 'the same, with indexes on stale_at, inactive_at, updated_at',
    sql: `select public.agent_heartbeat_batch(${BATCH_JSON});`,
    before: WRITTEN_COLUMN_INDEXES.map((column) => `create index bench_${column}_idx on public.agent_status (${column});`).join(' '),
    after: WRITTEN_COLUMN_INDEXES.map((column) => `drop index public.bench_${column}_idx;`).join(' '),
  },
  { name: 'per item (apply_event each)', sql: `select agent_private.heartbeat_batch_item(x) from jsonb_array_elements(${BATCH_JSON}) x;` },
  {
    name: 'set-based floor (UPDATE + token check)',
    sql: `update public.agent_status a set last_heartbeat = now(), updated_at = now(), stale_at = now() + interval '120 seconds'
  from public.api_tokens t, jsonb_array_elements(${BATCH_JSON}) x
  where t.token_hash = sha256(convert_to(x ->> 'token', 'UTF8')) and t.revoked_at is null and a.id = t.agent_id and a.agent_name = x ->> 'agent_name';`,
  },
];

// Single runs of one path vary by ±10 µs per item on the development machine (a virtual machine
// whose speed moves between runs), more than the difference two paths may make: each path is
// measured at least 5 times, the paths alternated, and the median kept.
const SQL_COST_ROUNDS = Math.max(ROUNDS, 5);

/** PostgreSQL CPU per heartbeat item in 50-batches: the median of SQL_COST_ROUNDS alternated rounds. */
async function sqlCostPerItem(
  sql: postgres.Sql,
  url: string,
  dataDir: string,
  dir: string,
): Promise<{ name: string; microseconds: number }[]> {
  const results = new Map<string, number[]>(SQL_PATHS.map(({ name }) => [name, []]));
  for (let round = 0; round < SQL_COST_ROUNDS; round++) {
    for (const path of SQL_PATHS) {
      const script = join(dir, 'batch.sql');
      writeFileSync(script, `${path.sql}\n`);
      if (path.before) await sql.unsafe(path.before);
      const before = clusterCpuSeconds(dataDir);
      const { transactions } = await pgbench(url, 1, script, dir);
      // pgbench's backend exits after pgbench; its CPU counts once the postmaster has reaped it
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const perItem = ((clusterCpuSeconds(dataDir) - before) / (transactions * 50)) * 1e6;
      if (path.after) await sql.unsafe(path.after);
      results.get(path.name)!.push(perItem);
    }
  }
  return SQL_PATHS.map(({ name }) => ({
    name,
    microseconds: percentile(
      results.get(name)!.sort((a, b) => a - b),
      50,
    ),
  }));
}

function table(rows: { clients: number; pgbench: Cell; deno: Cell; postgrest: Cell }[]) {
  const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
  const header = [
    'clients',
    'pgbench req/s',
    'p50 ms',
    'p99 ms',
    'Deno fn req/s',
    'p50 ms',
    'p99 ms',
    'vs pgbench',
    'PostgREST req/s',
    'p50 ms',
    'p99 ms',
    'vs pgbench',
  ];
  const lines = rows.map((r) => [
    String(r.clients),
    f(r.pgbench.rps),
    f(r.pgbench.p50, 2),
    f(r.pgbench.p99, 2),
    f(r.deno.rps),
    f(r.deno.p50, 2),
    f(r.deno.p99, 2),
    f(r.deno.rps / r.pgbench.rps, 2),
    f(r.postgrest.rps),
    f(r.postgrest.p50, 2),
    f(r.postgrest.p99, 2),
    f(r.postgrest.rps / r.pgbench.rps, 2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  console.log(format(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const line of lines) console.log(format(line));
}

export async function run() {
  const log = (line: string) => console.log(`  ${line}`);
  const dir = mkdtempSync(join(tmpdir(), 'agent-status-bench-'));
  const cluster = await startPostgresCluster({ log });
  const supervisor = new Supervisor((name, reason) => console.error(`${name} ${reason}`));
  let database: Awaited<ReturnType<typeof startDatabase>> | undefined;
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await admin`create database bench`;
    await admin.end();
    database = await startDatabase({ kind: 'url', url: cluster.urlFor('bench') }, log);

    // One agent and one token per client; tokens with known text so pgbench can send them too.
    const agents = await createBenchAgents(database.sql, 'bench', Math.max(...LEVELS));
    // 4 clients x 50 agents for the batch measurements (pgbench's client ids 0..3), running already
    await database.sql`
      insert into public.agent_status (agent_name, status, status_source, health, last_heartbeat, stale_at)
      select 'bench-batch-' || c || '-' || i, 'running', 'agent', 0, now(), now() + interval '1 hour'
      from generate_series(0, 3) c, generate_series(0, 49) i`;
    await database.sql`
      insert into public.api_tokens (kind, label, token_hash, token_prefix, agent_id)
      select 'agent', agent_name, sha256(convert_to('asa_batch_' || replace(substr(agent_name, 13), '-', '_'), 'UTF8')), 'asa_batch', id
      from public.agent_status where agent_name like 'bench-batch-%'`;
    const script = join(dir, 'heartbeat.sql');
    writeFileSync(script, "select 1 from public.agent_heartbeat('asa_bench_' || :client_id, 'bench-agent-' || :client_id);\n");

    const jwtSecret = createJwtSecret();
    const anonKey = await signApiKey(jwtSecret, 'anon');
    const postgrest = await startPostgrest({ supervisor, authenticatorUrl: database.authenticatorUrl, jwtSecret, pool: 10 });
    const heartbeat = await startFunction('heartbeat', {
      supervisor,
      env: {
        SUPABASE_URL: `http://127.0.0.1:${postgrest.port}`, // not used by heartbeat
        SUPABASE_ANON_KEY: anonKey,
        SUPABASE_DB_URL: cluster.urlFor('bench'),
        ...(process.env.AGENT_STATUS_DB_POOL ? { AGENT_STATUS_DB_POOL: process.env.AGENT_STATUS_DB_POOL } : {}),
      },
    });

    console.log(
      `\nheartbeat: best of ${ROUNDS} rounds of ${SECONDS} s per cell after ${WARMUP_SECONDS} s warm-up; load generator, Deno, PostgREST and`,
    );
    console.log("PostgreSQL share this machine's cores; pgbench runs the same public.agent_heartbeat per transaction.\n");
    const rows = [];
    const best = (a: Cell | undefined, b: Cell) => (a && a.rps >= b.rps ? a : b);
    for (const level of LEVELS) {
      const mine = agents.slice(0, level);
      let base: Cell | undefined;
      let deno: Cell | undefined;
      let rest: Cell | undefined;
      for (let round = 0; round < ROUNDS; round++) {
        base = best(base, await pgbench(cluster.urlFor('bench'), level, script, dir));
        const cpu = cpuWindow(heartbeat.child.pid, cluster.dataDir);
        const load = await closedLoop(
          heartbeat.port,
          mine.map((a) => postRequest('/heartbeat', { authorization: `Bearer ${a.token}` }, { agent_name: a.name })),
          { seconds: SECONDS, warmupSeconds: WARMUP_SECONDS, window: cpu.window },
        );
        deno = best(deno, { ...cell(load), cpu: cpu.perRequest(load.requests) });
        rest = best(
          rest,
          cell(
            await closedLoop(
              postgrest.port,
              mine.map((a) =>
                postRequest('/rpc/agent_heartbeat', { authorization: `Bearer ${anonKey}` }, { p_token: a.token, p_agent_name: a.name }),
              ),
              { seconds: SECONDS, warmupSeconds: WARMUP_SECONDS },
            ),
          ),
        );
      }
      rows.push({ clients: level, pgbench: base!, deno: deno!, postgrest: rest! });
      log(`${level} client(s) measured`);
    }
    console.log('');
    table(rows);
    // A backend that goes idle reports its counts within PostgreSQL 15's 10 s idle interval.
    await new Promise((resolve) => setTimeout(resolve, 11_000));
    const [updates] = await database.sql`
      select n_tup_upd::float8 as updated, n_tup_hot_upd::float8 as in_place from pg_stat_user_tables where relid = 'public.agent_status'::regclass`;
    console.log(
      `\nheap-only (HOT) updates of agent_status over these runs: ${((updates.in_place / updates.updated) * 100).toFixed(1)}% of ${updates.updated.toFixed(0)}`,
    );
    const at32 = rows.find((r) => r.clients === 32)!;
    const ratio = at32.deno.rps / at32.pgbench.rps;
    console.log(
      `\nDeno function at 32 clients: ${ratio.toFixed(2)} of pgbench (target: at least 0.50) -> ${ratio >= 0.5 ? 'met' : 'NOT met'}`,
    );

    console.log(
      `\nPostgreSQL CPU per heartbeat item in a batch of 50 (pgbench, 1 client, median of ${SQL_COST_ROUNDS} alternated rounds of ${SECONDS} s):`,
    );
    const costs = await sqlCostPerItem(database.sql, cluster.urlFor('bench'), cluster.dataDir, dir);
    const nameWidth = Math.max(...costs.map(({ name }) => name.length));
    for (const { name, microseconds } of costs) console.log(`  ${name.padEnd(nameWidth)} ${microseconds.toFixed(1).padStart(7)} µs`);
    const batchCost = costs[0].microseconds;
    console.log(
      `  agent_heartbeat_batch per item: ${batchCost.toFixed(1)} µs (target: at most 50) -> ${batchCost <= 50 ? 'met' : 'NOT met'}`,
    );

    const batchScript = join(dir, 'batch-ceiling.sql');
    writeFileSync(batchScript, `${SQL_PATHS[0].sql}\n`);
    let ceiling = 0;
    for (let round = 0; round < ROUNDS; round++)
      ceiling = Math.max(ceiling, (await pgbench(cluster.urlFor('bench'), 4, batchScript, dir)).rps * 50);
    const share = at32.deno.rps / ceiling;
    console.log(
      `pgbench's batched ceiling (4 clients, 50-batches of agent_heartbeat_batch): ${ceiling.toFixed(0)} heartbeats/s; the function at 32 clients: ${at32.deno.rps.toFixed(0)}/s = ${share.toFixed(2)} of it (target: at least 0.8) -> ${share >= 0.8 ? 'met' : 'NOT met'}`,
    );
    console.log(
      `heartbeat p99 at 32 clients through the function: ${at32.deno.p99.toFixed(1)} ms (target: at most 10) -> ${at32.deno.p99 <= 10 ? 'met' : 'NOT met'}`,
    );

    // Where the function's heartbeats go, measured in its best round at 32 clients. The load generator,
    // Deno and PostgreSQL share the cores here; on Supabase the function runs on other machines than
    // the database, so PostgreSQL's share alone bounds what the function can send one database.
    const split = at32.deno.cpu!;
    const cores = availableParallelism();
    const total = split.loadGenerator + split.deno + split.postgres;
    const us = (n: number) => `${n.toFixed(0)} µs (${((n / total) * 100).toFixed(0)}%)`;
    console.log(
      `\nCPU per heartbeat through the function at 32 clients (its best round): load generator ${us(split.loadGenerator)}, Deno ${us(split.deno)}, PostgreSQL ${us(split.postgres)}; ${total.toFixed(0)} µs in all, on ${cores} cores`,
    );
    const databaseBound = (cores / split.postgres) * 1e6;
    console.log(
      `the function's database-bound ceiling (${cores} cores / ${split.postgres.toFixed(0)} µs of PostgreSQL CPU per heartbeat): ${databaseBound.toFixed(0)} heartbeats/s = ${(databaseBound / ceiling).toFixed(2)} of pgbench's batched ceiling; the same bound for pgbench's 50-batches (${batchCost.toFixed(0)} µs per item): ${((cores / batchCost) * 1e6).toFixed(0)}/s, so the function's batches cost PostgreSQL ${(split.postgres / batchCost).toFixed(2)}x theirs per heartbeat`,
    );
    console.log(
      `the function's Deno-bound ceiling (${cores} cores / ${split.deno.toFixed(0)} µs of Deno CPU per heartbeat): ${((cores / split.deno) * 1e6).toFixed(0)} heartbeats/s per function instance`,
    );
  } finally {
    await supervisor.stopAll();
    await database?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
