// The embedded database under load from every kind of client at once: PostgREST's pool, the Deno
// functions' postgres.js pools (batched heartbeats, report transactions) and the stack's own client,
// all multiplexed by pglite-socket onto one PGlite backend. And the sweep on a timer, for want of pg_cron.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startStack, type Stack } from '../../runner/local-stack/stack.ts';
import { freePort } from '../../runner/local-stack/ports.ts';
import { waitUntil } from '../../runner/local-stack/wait.ts';

let stack: Stack;
let dataDir: string;
let crash: string | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'agent-status-pglite-'));
  stack = await startStack({
    port: await freePort(),
    database: { kind: 'pglite', dataDir, port: await freePort() },
    functions: true,
    sweepIntervalMs: 300,
    onCrash: (name, reason) => (crash = `${name} ${reason}`),
  });
});

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  if (crash) throw new Error(`the stack crashed: ${crash}`);
});

async function agentToken(name: string): Promise<string> {
  const [{ token }] = await stack.sql<{ token: string }[]>`select token from public.create_api_token('agent', null, ${name})`;
  return token;
}

function post(fn: string, token: string, body: unknown) {
  return fetch(`${stack.url}/functions/v1/${fn}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('PGlite behind the local stack', () => {
  it('serves concurrent heartbeats, report transactions and PostgREST reads without mixing them up', async () => {
    const names = ['load-a', 'load-b', 'load-c'];
    const tokens = await Promise.all(names.map(agentToken));
    const requests: Promise<Response>[] = [];
    for (let i = 0; i < 20; i++) {
      names.forEach((name, n) => {
        requests.push(post('heartbeat', tokens[n], { agent_name: name, status: 'running', health: 50 + i }));
        if (i % 5 === 0) {
          requests.push(
            post('report', tokens[n], {
              reports: [
                { agent_name: name, event: 'activity', last_activity: `step ${i}` },
                { agent_name: name, event: 'heartbeat' },
              ],
            }),
          );
        }
      });
      requests.push(
        fetch(`${stack.url}/rest/v1/agent_status?select=agent_name,status&order=agent_name`, { headers: { apikey: stack.serviceKey } }),
      );
    }
    const answers = await Promise.all(requests);
    const failed = await Promise.all(answers.filter((r) => r.status !== 200).map(async (r) => `${r.status} ${await r.text()}`));
    expect(failed).toEqual([]);
    const rows = await stack.sql`select agent_name, status from public.agent_status where agent_name like 'load-%' order by agent_name`;
    expect(rows).toEqual(names.map((agent_name) => ({ agent_name, status: 'running' })));
  }, 60_000);

  it('runs the sweep on a timer, since PGlite has no pg_cron', async () => {
    expect(stack.sweepByPgCron).toBe(false);
    const token = await agentToken('goes-silent');
    expect((await post('heartbeat', token, { agent_name: 'goes-silent', status: 'running' })).status).toBe(200);
    // as if its heartbeat timeout had passed
    await stack.sql`update public.agent_status set stale_at = now() - interval '1 second' where agent_name = 'goes-silent'`;
    await waitUntil(
      'the sweep marking the silent agent stale',
      async () => {
        const [row] = await stack.sql`select status from public.agent_status where agent_name = 'goes-silent'`;
        return row.status === 'stale';
      },
      { timeoutMs: 10_000 },
    );
  });
});
