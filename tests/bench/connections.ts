// The connections PostgreSQL holds for the edge functions: BENCH_ISOLATES heartbeat functions (20 by
// default; each Deno process is one isolate with its own pool, as the platform runs many) under load,
// straight to PostgreSQL (SUPABASE_DB_URL, what the functions used before AGENT_STATUS_DB_URL), then
// through a transaction-mode PgBouncer (what Supavisor's port 6543 is), in the same run. The figure is
// the most server connections for the functions' database seen during the load (sampled every 100 ms).
import postgres from 'postgres';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { startDatabase } from '../../runner/local-stack/database.ts';
import { startFunction } from '../../runner/local-stack/functions.ts';
import { startPostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { startPgbouncer } from '../helpers/pgbouncer.ts';
import { closedLoop, postRequest } from './load.ts';
import { createBenchAgents } from './agents.ts';

const ISOLATES = Number(process.env.BENCH_ISOLATES ?? 20);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CLIENTS_PER_ISOLATE = 3;
// the pooler's server connections per database and user: Supavisor's default pool size on the smaller
// compute sizes
const POOLER_POOL = 15;
const POOL_PER_ISOLATE = process.env.AGENT_STATUS_DB_POOL ?? '2';

export async function run() {
  const log = (line: string) => console.log(`  ${line}`);
  const cluster = await startPostgresCluster({ log });
  const pooler = await startPgbouncer({ postgresPort: cluster.port, poolSize: POOLER_POOL });
  let database: Awaited<ReturnType<typeof startDatabase>> | undefined;
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await admin`create database bench_connections`;
    await admin.end();
    database = await startDatabase({ kind: 'url', url: cluster.urlFor('bench_connections') }, () => {});
    const agents = await createBenchAgents(database.sql, 'conn', ISOLATES * CLIENTS_PER_ISOLATE);
    const direct = cluster.urlFor('bench_connections');
    const rows: { path: string; held: number; rps: number; errors: number }[] = [];
    for (const [path, url] of [
      ['straight to PostgreSQL', direct],
      [`through PgBouncer (transaction mode, pool ${POOLER_POOL})`, pooler.urlFor('bench_connections')],
    ] as const) {
      const supervisor = new Supervisor((name, reason) => console.error(`${name} ${reason}`));
      try {
        const functions = await Promise.all(
          Array.from({ length: ISOLATES }, () =>
            startFunction('heartbeat', {
              supervisor,
              env: {
                SUPABASE_URL: 'http://127.0.0.1:1', // heartbeat never calls PostgREST
                SUPABASE_ANON_KEY: 'unused',
                SUPABASE_DB_URL: direct,
                AGENT_STATUS_DB_URL: url,
                AGENT_STATUS_DB_POOL: POOL_PER_ISOLATE,
              },
            }),
          ),
        );
        let held = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            const [{ n }] = await database!.sql`
              select count(*)::int as n from pg_stat_activity
              where datname = 'bench_connections' and backend_type = 'client backend' and pid <> pg_backend_pid()`;
            held = Math.max(held, n);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        })();
        const results = await Promise.all(
          functions.map((fn, f) =>
            closedLoop(
              fn.port,
              agents
                .slice(f * CLIENTS_PER_ISOLATE, (f + 1) * CLIENTS_PER_ISOLATE)
                .map((a) => postRequest('/heartbeat', { authorization: `Bearer ${a.token}` }, { agent_name: a.name })),
              { seconds: SECONDS, warmupSeconds: 1 },
            ),
          ),
        );
        sampling = false;
        await sampler;
        // the stack's own connections (the migrator's pool) count in both rows alike
        rows.push({
          path,
          held,
          rps: results.reduce((sum, r) => sum + r.requests, 0) / SECONDS,
          errors: results.reduce((sum, r) => sum + r.errors, 0),
        });
        log(`${path}: measured`);
      } finally {
        await supervisor.stopAll();
      }
    }
    console.log(
      `\n${ISOLATES} heartbeat function isolates, AGENT_STATUS_DB_POOL=${POOL_PER_ISOLATE}, ${CLIENTS_PER_ISOLATE} clients each, ${SECONDS} s:`,
    );
    for (const row of rows) {
      console.log(
        `  ${row.path.padEnd(48)} PostgreSQL connections held (most seen): ${String(row.held).padStart(3)}   heartbeats/s: ${row.rps.toFixed(0)}${row.errors ? `   errors: ${row.errors}` : ''}`,
      );
    }
  } finally {
    await database?.stop();
    await pooler.stop();
    await cluster.stop();
  }
}
