// How a function that does not load is handled: a crash naming it for the tests and the harness,
// and under `npm start` (watch) a wait for the fix, then the fixed function served without a restart.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, afterAll } from 'vitest';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { startFunction, type FunctionEnv } from '../../runner/local-stack/functions.ts';
import { waitUntil } from '../../runner/local-stack/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'agent-status-functions-'));
const supervisors: Supervisor[] = [];
afterAll(async () => {
  await Promise.all(supervisors.map((s) => s.stopAll()));
  rmSync(dir, { recursive: true, force: true });
});

const env: FunctionEnv = {
  SUPABASE_URL: 'http://127.0.0.1:1',
  SUPABASE_ANON_KEY: 'a',
  SUPABASE_DB_URL: 'postgres://x@127.0.0.1:1/x',
};
const BROKEN = 'Deno.serve((request) => new Response("half written"';
const WORKING = 'Deno.serve(() => new Response("hello from " + Deno.env.get("SUPABASE_URL")));\n';

function writeFunction(name: string, code: string) {
  mkdirSync(join(dir, name), { recursive: true });
  writeFileSync(join(dir, name, 'index.ts'), code);
}

describe('a function that does not load', () => {
  it('is a crash that names it, without watch', async () => {
    writeFunction('broken', BROKEN);
    const crashes: string[] = [];
    const supervisor = new Supervisor((name, reason) => crashes.push(`${name} ${reason}`));
    supervisors.push(supervisor);
    await expect(startFunction('broken', { supervisor, env, dir })).rejects.toThrow(
      /edge function broken listening: Deno exited while loading it/,
    );
    expect(crashes[0]).toMatch(/^edge function broken exited unexpectedly \(code 1\)/);
  });

  it('is served once fixed, with watch', async () => {
    writeFunction('fixed-later', BROKEN);
    const supervisor = new Supervisor((name, reason) => {
      throw new Error(`${name} ${reason}`);
    });
    supervisors.push(supervisor);
    const served = await startFunction('fixed-later', { supervisor, env, dir, watch: true });
    writeFunction('fixed-later', WORKING);
    let body = '';
    await waitUntil(
      'the fixed function answering',
      async () => {
        const response = await fetch(`http://127.0.0.1:${served.port}/fixed-later`);
        body = await response.text();
        return response.status === 200;
      },
      { timeoutMs: 30_000 },
    );
    expect(body).toBe('hello from http://127.0.0.1:1');
  });
});
