// The edge functions through a transaction-mode pooler, as on Supabase with AGENT_STATUS_DB_URL set to
// Supavisor's port 6543: a real PgBouncer (pool_mode = transaction) with one server connection, so
// every transaction of every client shares it, in any order. A function that kept session state
// (prepared statements, SET, LISTEN) would fail or leak it here.
import { describe, it, expect, beforeAll, afterAll, inject } from 'vitest';
import postgres from 'postgres';
import { useTestDatabase } from '../helpers/database.ts';
import { createToken } from '../helpers/agents.ts';
import { startPgbouncer, type Pgbouncer } from '../helpers/pgbouncer.ts';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { startFunction, type ServedFunction } from '../../runner/local-stack/functions.ts';

const db = useTestDatabase();
const supervisor = new Supervisor((name, reason) => console.error(`${name} ${reason}`));
let pooler: Pgbouncer;
const functions: Record<string, ServedFunction> = {};
const names = Array.from({ length: 20 }, (_, i) => `pooled-${i}`);
const tokens: string[] = [];

beforeAll(async () => {
  pooler = await startPgbouncer({ postgresPort: inject('postgres').port, poolSize: 1 });
  for (const agent of names) tokens.push(await createToken(db.sql, 'agent', { agent }));
  const env = {
    SUPABASE_URL: 'http://127.0.0.1:1', // heartbeat and report never call PostgREST
    SUPABASE_ANON_KEY: 'unused',
    // the direct address leads nowhere: everything must go through the pooler
    SUPABASE_DB_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
    AGENT_STATUS_DB_URL: pooler.urlFor(db.name),
  };
  for (const name of ['heartbeat', 'report']) functions[name] = await startFunction(name, { supervisor, env });
}, 60_000);

afterAll(async () => {
  await supervisor.stopAll();
  await pooler?.stop();
});

async function post(name: string, body: unknown, token: string) {
  const response = await fetch(`http://127.0.0.1:${functions[name].port}/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

describe('the functions through PgBouncer in transaction mode', () => {
  it('apply concurrent heartbeats and report batches over one shared server connection', async () => {
    const heartbeats = [...names, ...names, ...names].map((agent, i) =>
      post('heartbeat', { agent_name: agent, health: i % 100 }, tokens[i % names.length]),
    );
    // each report request is one transaction of three statements, with SET LOCAL between them
    const reports = names.slice(0, 10).map((agent, i) =>
      post(
        'report',
        {
          reports: [
            { agent_name: agent, event: 'warning', message: `slow ${i}` },
            { agent_name: agent, event: 'activity', last_activity: `step ${i}` },
            { agent_name: agent, event: 'running' },
          ],
        },
        tokens[i],
      ),
    );
    const answers = await Promise.all([...heartbeats, ...reports]);
    for (const answer of answers) expect(answer, JSON.stringify(answer.json)).toMatchObject({ status: 200 });
    const rows = await db.sql`
      select agent_name, status, last_warning from public.agent_status where agent_name like 'pooled-%' order by agent_name`;
    expect(rows).toHaveLength(20);
    expect(rows.every((row) => row.status === 'running')).toBe(true);
    expect(rows.filter((row) => row.last_warning?.startsWith('slow '))).toHaveLength(10);
    expect(await pooler.serverConnections(db.name)).toBe(1);
  });

  it('leave no session setting behind on the server connection', async () => {
    // the report path's SET LOCAL statement_timeout ended with its transaction
    const client = postgres(pooler.urlFor(db.name), { prepare: false, max: 1, onnotice: () => {} });
    try {
      const [{ statement_timeout }] = await client`show statement_timeout`;
      expect(statement_timeout).toBe('0');
    } finally {
      await client.end();
    }
  });
});
