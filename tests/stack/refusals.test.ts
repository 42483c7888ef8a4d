// What clients must not do gets a 4xx saying so, never a 500: writes to the read-only live view
// with every key and as an operator, and HTTP methods nothing here serves.
import { request } from 'node:http';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { beforeAll, describe, expect, it } from 'vitest';
import { setAgentState } from '../helpers/agents.ts';
import { useTestStack } from '../helpers/stack.ts';

const stack = useTestStack();
let session = '';

beforeAll(async () => {
  await setAgentState(stack.db.sql, 'view-agent', 'running');
  const client = createClient(stack.url, stack.anonKey, { realtime: { transport: WebSocket as never }, auth: { persistSession: false } });
  const { data, error } = await client.auth.signInWithPassword(stack.operator);
  if (error) throw error;
  session = data.session!.access_token;
});

describe('agent_status_live, the read-only view', () => {
  it('answers a write with 4xx for the publishable key, an operator session and the secret key, and changes nothing', async () => {
    const [before] = await stack.db.sql`select xmin::text, status from public.agent_status where agent_name = 'view-agent'`;
    const callers = {
      publishable: { apikey: stack.anonKey },
      operator: { apikey: stack.anonKey, authorization: `Bearer ${session}` },
      secret: { apikey: stack.serviceKey },
    };
    for (const [who, headers] of Object.entries(callers)) {
      for (const [method, query, body] of [
        ['POST', '', { agent_name: 'planted', status: 'running' }],
        ['PATCH', '?agent_name=eq.view-agent', { status: 'error' }],
        ['DELETE', '?agent_name=eq.view-agent', undefined],
      ] as const) {
        const response = await fetch(`${stack.url}/rest/v1/agent_status_live${query}`, {
          method,
          headers: { ...headers, 'content-type': 'application/json' },
          body: body && JSON.stringify(body),
        });
        const text = await response.text();
        expect(response.status, `${method} as ${who}: ${text}`).toBeGreaterThanOrEqual(400);
        expect(response.status, `${method} as ${who}: ${text}`).toBeLessThan(500);
      }
    }
    const [after] = await stack.db.sql`select xmin::text, status from public.agent_status where agent_name = 'view-agent'`;
    expect(after).toEqual(before);
  });
});

describe('HTTP methods nothing serves', () => {
  it('TRACE answers 405 with the methods that are served, TRACK 400', async () => {
    for (const [method, expected] of [
      ['TRACE', 405],
      ['TRACK', 400],
    ] as const) {
      const { status, allow } = await new Promise<{ status: number; allow?: string }>((resolve, reject) => {
        const call = request(`${stack.url}/rest/v1/agent_status_live`, { method }, (response) => {
          response.resume();
          resolve({ status: response.statusCode!, allow: response.headers.allow });
        });
        call.on('error', reject);
        call.end();
      });
      expect(status, method).toBe(expected);
      if (expected === 405) expect(allow).toMatch(/GET/);
    }
  });
});
