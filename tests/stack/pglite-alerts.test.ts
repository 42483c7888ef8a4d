// Issue 19, case 11: on the default database (embedded PGlite) a flip's notice leaves at once, woken
// by the outbox's NOTIFY, as on PostgreSQL; not on the dispatcher's timer. The timer here is 10
// minutes, so only the wake can deliver within the bound. (How fast: BENCH=alerts npm run bench.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../runner/local-stack/ports.ts';
import { startStack, type Stack } from '../../runner/local-stack/stack.ts';
import { useReceiver } from '../alerts/receiver.ts';
import { waitFor } from '../runner/helpers.ts';

const receiver = useReceiver();
let stack: Stack;
let dataDir: string;
let crash: string | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'agent-status-pglite-alerts-'));
  stack = await startStack({
    port: await freePort(),
    database: { kind: 'pglite', dataDir, port: await freePort() },
    functions: true,
    alertIntervalMs: 600_000,
    onCrash: (name, reason) => (crash = `${name} ${reason}`),
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  if (crash) throw new Error(`the stack crashed: ${crash}`);
});

it('a flip to error is delivered at once, woken by its NOTIFY, on PGlite', async () => {
  const { sql } = stack;
  await sql`select public.alert_channel_save('hook', 'webhook', ${`${receiver.url}/hook`}, 'whsec_0123456789abcdef')`;
  await sql`select public.alert_channel_rules('hook', '{"flap_threshold": 0}')`;
  const [{ token }] = await sql`select token from public.create_api_token('agent', null, 'woken')`;
  await sql`select public.agent_report(${token}, 'woken', 'started')`;
  // through the report function: a client of pglite-socket, as every agent's report is
  const response = await fetch(`${stack.url}/functions/v1/report`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ agent_name: 'woken', event: 'error', message: 'disk full' }),
  });
  expect(response.status).toBe(200);
  const [delivered] = await waitFor('the notice at the receiver', () => receiver.on('/hook').length && receiver.on('/hook'), 10_000, 20);
  expect(delivered.json).toMatchObject({ title: 'woken is down: error' });
  // the stack's own queries still work: the tap took only the notification
  expect((await sql`select status from public.agent_status where agent_name = 'woken'`)[0].status).toBe('error');
}, 60_000);
