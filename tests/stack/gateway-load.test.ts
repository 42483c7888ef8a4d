// The gateway under ordinary concurrency: keep-alive callers (the runner, supabase-js, agents) and
// callers that send `Connection: close` (curl, many HTTP libraries), to PostgREST and to a function at
// once. Hop-by-hop headers are the gateway's business, not the upstream's: none of these may fail.
import { Agent, request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../helpers/agents.ts';
import { useTestStack } from '../helpers/stack.ts';

const stack = useTestStack({ functions: true });
const keepAlive = new Agent({ keepAlive: true, maxSockets: 50 });
let agentToken: string;

beforeAll(async () => {
  agentToken = await createToken(stack.db.sql, 'agent', { agent: 'load-agent' });
});
afterAll(() => keepAlive.destroy());

function call(
  path: string,
  options: { method: string; connection: 'keep-alive' | 'close'; body?: string; headers?: Record<string, string> },
) {
  return new Promise<string>((resolve) => {
    const request = httpRequest(
      `${stack.url}${path}`,
      {
        method: options.method,
        agent: options.connection === 'keep-alive' ? keepAlive : false,
        headers: { connection: options.connection, ...options.headers },
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => {
          body += chunk;
        });
        response.on('end', () => resolve(response.statusCode === 200 ? '200' : `${response.statusCode} ${body}`));
        response.on('error', (error) => resolve(error.message));
      },
    );
    request.on('error', (error) => resolve(error.message));
    request.end(options.body);
  });
}

describe('200 concurrent requests through the gateway', () => {
  for (const connection of ['keep-alive', 'close'] as const) {
    it(`with Connection: ${connection}, to PostgREST and to a function, all answered`, async () => {
      const rest = Array.from({ length: 200 }, () =>
        call('/rest/v1/agent_status?select=agent_name&limit=1', { method: 'GET', connection, headers: { apikey: stack.serviceKey } }),
      );
      const functions = Array.from({ length: 200 }, () =>
        call('/functions/v1/heartbeat', {
          method: 'POST',
          connection,
          headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ agent_name: 'load-agent', status: 'running' }),
        }),
      );
      const outcomes = await Promise.all([...rest, ...functions]);
      const counts: Record<string, number> = {};
      for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
      expect(counts).toEqual({ 200: 400 });
    }, 60_000);
  }
});
