// Heartbeat throughput and latency at 1, 8 and 32 concurrent clients through the deployed-style path
// (the heartbeat function under Deno -> its direct, batching connection -> PostgreSQL), next to two
// references measured in the same run on the same private cluster:
//   - pgbench -M prepared: the same heartbeat (public.agent_heartbeat, one agent and token per
//     client) sent straight into PostgreSQL, the ceiling the issue compares against;
//   - PostgREST RPC: POST /rpc/agent_heartbeat, one statement per heartbeat; the function could only
//     be slower than this if it went through PostgREST, which is why it connects directly.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
}

function cell(result: LoadResult): Cell {
  const sorted = result.latenciesMs.sort((a, b) => a - b);
  if (result.errors) console.log(`  ${result.errors} failed requests, the first: ${result.firstError}`);
  return { rps: result.requests / result.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors: result.errors };
}

// pgbench with a per-transaction log, so its p50/p99 are computed the same way as the HTTP ones.
async function pgbench(url: string, clients: number, script: string, dir: string): Promise<Cell> {
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
  const latencies: number[] = [];
  for (const file of readdirSync(dir).filter((f) => f.startsWith('pgbench_log'))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      const microseconds = Number(line.split(' ')[2]);
      if (line && Number.isFinite(microseconds)) latencies.push(microseconds / 1000);
    }
  }
  latencies.sort((a, b) => a - b);
  return { rps: tps, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors: 0 };
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
    const clients = Math.max(...LEVELS);
    const agents = Array.from({ length: clients }, (_, i) => ({ name: `bench-agent-${i}`, token: `asa_bench_${i}` }));
    for (const { name, token } of agents) {
      await database.sql`insert into public.agent_status (agent_name) values (${name})`;
      await database.sql`
        insert into public.api_tokens (kind, label, token_hash, token_prefix, agent_id)
        select 'agent', ${name}, sha256(convert_to(${token}, 'UTF8')), left(${token}, 10), id
        from public.agent_status where agent_name = ${name}`;
    }
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
        deno = best(
          deno,
          cell(
            await closedLoop(
              heartbeat.port,
              mine.map((a) => postRequest('/heartbeat', { authorization: `Bearer ${a.token}` }, { agent_name: a.name })),
              { seconds: SECONDS, warmupSeconds: WARMUP_SECONDS },
            ),
          ),
        );
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
    const at32 = rows.find((r) => r.clients === 32)!;
    const ratio = at32.deno.rps / at32.pgbench.rps;
    console.log(
      `\nDeno function at 32 clients: ${ratio.toFixed(2)} of pgbench (target: at least 0.50) -> ${ratio >= 0.5 ? 'met' : 'NOT met'}`,
    );
  } finally {
    await supervisor.stopAll();
    await database?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
