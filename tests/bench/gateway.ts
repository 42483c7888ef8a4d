// The local gateway (runner/local-stack/gateway.ts) against going straight to the function behind
// it, in the same run: the heartbeat function under Deno, at CLIENTS closed-loop clients (one agent
// and token each), once on the function's own port and once through the gateway's
// /functions/v1/heartbeat, alternating, best of ROUNDS. The gateway runs in this process as `npm
// start` runs it; the load generator in a process of its own. Target: the gateway at 0.8 or more of
// the function's requests per second (issue 22 measured 724 against 2,593 rps, 0.28). Beside them,
// when nginx is installed, nginx proxying the same path (nginx-reference.ts): what a proxy in a
// process of its own reaches on the same cores.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Hono } from 'hono';
import postgres from 'postgres';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { startDatabase } from '../../runner/local-stack/database.ts';
import { startFunction } from '../../runner/local-stack/functions.ts';
import { Gateway } from '../../runner/local-stack/gateway.ts';
import { createJwtSecret, createStackKeys } from '../../runner/local-stack/keys.ts';
import { startPostgresCluster } from '../../runner/local-stack/postgres-cluster.ts';
import { startPostgrest } from '../../runner/local-stack/postgrest.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { createBenchAgents } from './agents.ts';
import { type LoadResult, percentile, postRequest } from './load.ts';
import { type NginxReference, startNginxReference } from './nginx-reference.ts';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const WARMUP_SECONDS = 1;
const run$ = promisify(execFile);

async function load(port: number, requests: Buffer[]): Promise<LoadResult> {
  const { stdout } = await run$(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, 'load-child.ts')], {
    env: {
      ...process.env,
      BENCH_LOAD: JSON.stringify({
        port,
        requests: requests.map((r) => r.toString('base64')),
        seconds: SECONDS,
        warmupSeconds: WARMUP_SECONDS,
      }),
    },
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(stdout) as LoadResult;
}

interface Cell {
  rps: number;
  p99: number;
  errors: number;
  firstError?: string;
}

function cell(result: LoadResult): Cell {
  const sorted = [...result.latenciesMs].sort((a, b) => a - b);
  return { rps: result.requests / result.seconds, p99: percentile(sorted, 99), errors: result.errors, firstError: result.firstError };
}

export async function run() {
  const log = (line: string) => console.log(`  ${line}`);
  const cluster = await startPostgresCluster({ log });
  const supervisor = new Supervisor((name, reason) => console.error(`${name} ${reason}`));
  let database: Awaited<ReturnType<typeof startDatabase>> | undefined;
  let gateway: Gateway | undefined;
  let nginx: NginxReference | undefined;
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    await admin`create database bench_gateway`;
    await admin.end();
    database = await startDatabase({ kind: 'url', url: cluster.urlFor('bench_gateway') }, log);
    const agents = await createBenchAgents(database.sql, 'gw', CLIENTS);
    const jwtSecret = createJwtSecret();
    const keys = await createStackKeys(jwtSecret, 'new');
    const postgrest = await startPostgrest({ supervisor, authenticatorUrl: database.authenticatorUrl, jwtSecret, pool: 10 });
    const heartbeat = await startFunction('heartbeat', {
      supervisor,
      env: {
        SUPABASE_URL: `http://127.0.0.1:${postgrest.port}`,
        SUPABASE_ANON_KEY: keys.publishableKey,
        SUPABASE_DB_URL: cluster.urlFor('bench_gateway'),
      },
    });
    gateway = new Gateway({
      port: await freePort(),
      postgrestPort: postgrest.port,
      auth: new Hono(),
      keys,
      functionTarget: async () => ({ port: heartbeat.port, verifyJwt: heartbeat.verifyJwt }),
      dashboardConfig: { supabaseUrl: '', supabaseAnonKey: '', realtime: false },
    });
    await gateway.start();
    const gatewayPort = Number(new URL(gateway.url).port);
    nginx = await startNginxReference(supervisor, {
      path: '/functions/v1/heartbeat',
      upstreamPort: heartbeat.port,
      upstreamPath: '/heartbeat',
    });

    const requests = (path: string) =>
      agents.map((a) => postRequest(path, { authorization: `Bearer ${a.token}`, apikey: keys.publishableKey }, { agent_name: a.name }));
    const best = (a: Cell | undefined, b: Cell) => (a && a.rps >= b.rps ? a : b);
    let direct: Cell | undefined;
    let through: Cell | undefined;
    let reference: Cell | undefined;
    let gatewayCpuUs = Infinity;
    for (let round = 0; round < ROUNDS; round++) {
      direct = best(direct, cell(await load(heartbeat.port, requests('/heartbeat'))));
      const cpu = process.cpuUsage();
      const measured = cell(await load(gatewayPort, requests('/functions/v1/heartbeat')));
      const used = process.cpuUsage(cpu);
      // the gateway's own CPU per request it forwarded (warm-up included): the cost a loaded machine cannot hide
      const perRequest = (used.user + used.system) / (measured.rps * (SECONDS + WARMUP_SECONDS));
      gatewayCpuUs = Math.min(gatewayCpuUs, perRequest);
      through = best(through, measured);
      if (nginx) reference = best(reference, cell(await load(nginx.port, requests('/functions/v1/heartbeat'))));
      log(`round ${round + 1} of ${ROUNDS} measured`);
    }
    const ratio = through!.rps / direct!.rps;
    console.log(`\nheartbeat function, ${CLIENTS} clients, best of ${ROUNDS} rounds of ${SECONDS} s (load generator in its own process):`);
    console.log('                                   req/s    p99 ms   errors');
    const row = (label: string, c: Cell) =>
      console.log(`${label.padEnd(32)} ${c.rps.toFixed(0).padStart(7)} ${c.p99.toFixed(1).padStart(9)} ${String(c.errors).padStart(8)}`);
    row('straight to the function', direct!);
    row('through the local gateway', through!);
    if (reference) row('through nginx (reference)', reference);
    for (const c of [direct!, through!, ...(reference ? [reference] : [])]) if (c.firstError) console.log(`  first error: ${c.firstError}`);
    console.log(`the gateway's CPU per forwarded request: ${gatewayCpuUs.toFixed(0)} µs (lowest of the rounds)`);
    console.log(
      `gateway / direct: ${ratio.toFixed(2)} (target at least 0.8; issue 22 measured 0.28) -> ${ratio >= 0.8 ? 'met' : 'NOT met'}`,
    );
    console.log(
      reference
        ? `reference, nginx (one worker, proxying only) / direct: ${(reference.rps / direct!.rps).toFixed(2)}: what a proxy in a process of its own reaches on this machine`
        : 'reference: nginx is not installed, so there is no proxy to compare the gateway with (apt-get install nginx-light)',
    );
  } finally {
    await gateway?.stop();
    await nginx?.stop();
    await supervisor.stopAll();
    await database?.stop();
    await cluster.stop();
  }
}
