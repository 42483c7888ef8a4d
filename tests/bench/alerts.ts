// Alerts: from a status flip to the notice arriving at a webhook receiver, at the local stack's
// defaults (the stack's own dispatcher timer, woken at once by the outbox's NOTIFY), and the time to
// dispatch 1,000 flips to one webhook channel. The receiver is a small HTTP server on 127.0.0.1.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { startPostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { startStack } from '../../runner/local-stack/stack.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { ALERT_INTERVAL_MS } from '../../runner/local-stack/alerts.ts';
import { percentile } from './load.ts';

const FLIPS = Number(process.env.BENCH_ALERT_FLIPS ?? 40);
const BULK = 1000;

export async function run(): Promise<void> {
  const log = (line: string) => process.env.BENCH_VERBOSE && console.log(line);
  const cluster = await startPostgresCluster({ log });
  const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
  await admin.unsafe('create database bench_alerts');
  await admin.end();
  const arrivals = new Map<string, number>();
  const receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const notice = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      arrivals.set(notice.agent, performance.now());
      response.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    const stack = await startStack({ port: await freePort(), database: { kind: 'url', url: cluster.urlFor('bench_alerts') }, log });
    const sql = stack.sql;
    try {
      await sql`select public.alert_channel_save('bench', 'webhook', ${`http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`}, 'whsec_bench_0123456789')`;
      await sql`insert into public.agent_status (agent_name, status) select 'flip-' || i, 'running' from generate_series(1, ${FLIPS}) i`;
      await sql`insert into public.agent_status (agent_name, status) select 'bulk-' || i, 'running' from generate_series(1, ${BULK}) i`;

      const latencies = await oneAtATime(sql, 'flip', arrivals);

      // 1,000 flips committed together, then until the receiver has all 1,000 notices.
      const started = performance.now();
      await sql`select agent_private.apply_event(id, 'error', 'agent', 'bench') from public.agent_status where agent_name like 'bulk-%'`;
      const committed = performance.now();
      const bulk = () => [...arrivals.keys()].filter((name) => name.startsWith('bulk-')).length;
      while (bulk() < BULK) await new Promise((resolve) => setTimeout(resolve, 10));
      const done = performance.now();
      const recorded = async () =>
        (
          await sql`
            select count(*) filter (where status = 'delivered')::int as delivered, sum(attempts)::int as attempts
            from public.alert_deliveries where notice ->> 'agent' like 'bulk-%'`
        )[0];
      // the last answers arrive just before their attempts are recorded
      while ((await recorded()).delivered < BULK) await new Promise((resolve) => setTimeout(resolve, 10));
      const { delivered, attempts } = await recorded();

      console.log(`flip to delivered, ${FLIPS} flips one at a time (timer every ${ALERT_INTERVAL_MS / 1000} s, woken by NOTIFY):`);
      console.log(
        `  p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
      );
      console.log(`  without the NOTIFY wake the timer alone bounds it by ${ALERT_INTERVAL_MS / 1000} s; on Supabase pg_net wakes the`);
      console.log('  function after each flip and pg_cron runs it every 10 s, so expect about 1 s (p95 at most 10 s if a wake is lost)');
      console.log(
        `${BULK} flips in one transaction: committed in ${(committed - started).toFixed(0)} ms (trigger writing ${BULK} deliveries),`,
      );
      console.log(
        `  all ${BULK} received ${((done - committed) / 1000).toFixed(2)} s later (${(BULK / ((done - committed) / 1000)).toFixed(0)} notices/s; ${delivered} delivered, ${attempts} attempts)`,
      );
    } finally {
      await stack.stop();
      await cluster.stop();
    }

    // The default database (`npm start` without --db): embedded PGlite, the same one flip at a time.
    const dataDir = mkdtempSync(join(tmpdir(), 'agent-status-bench-pglite-'));
    const pglite = await startStack({ port: await freePort(), database: { kind: 'pglite', dataDir, port: await freePort() }, log });
    try {
      await pglite.sql`select public.alert_channel_save('bench', 'webhook', ${`http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`}, 'whsec_bench_0123456789')`;
      await pglite.sql`insert into public.agent_status (agent_name, status) select 'lite-' || i, 'running' from generate_series(1, ${FLIPS}) i`;
      const lite = await oneAtATime(pglite.sql, 'lite', arrivals);
      console.log(`the same on embedded PGlite (npm start's default database), ${FLIPS} flips one at a time:`);
      console.log(
        `  p50 ${percentile(lite, 50).toFixed(1)} ms, p95 ${percentile(lite, 95).toFixed(1)} ms, max ${lite.at(-1)!.toFixed(1)} ms`,
      );
    } finally {
      await pglite.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  } finally {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    receiver.closeAllConnections();
  }
}

/** Flips the agents named prefix-1..FLIPS to error one at a time; each from just before its transaction to its arrival, sorted. */
async function oneAtATime(sql: Sql, prefix: string, arrivals: Map<string, number>): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 1; i <= FLIPS; i++) {
    const name = `${prefix}-${i}`;
    const started = performance.now();
    await sql`select agent_private.apply_event(id, 'error', 'agent', 'bench') from public.agent_status where agent_name = ${name}`;
    while (!arrivals.has(name)) await new Promise((resolve) => setTimeout(resolve, 2));
    latencies.push(arrivals.get(name)! - started);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return latencies.sort((a, b) => a - b);
}
