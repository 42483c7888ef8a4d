// The gateway's own rules for /functions/v1, as on Supabase: a function checks the caller's JWT
// before it runs unless config.toml says verify_jwt = false for it.
import { request as httpRequest } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Hono } from 'hono';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { startFunction, verifiesJwt } from '../../runner/local-stack/functions.ts';
import { Gateway } from '../../runner/local-stack/gateway.ts';
import { createJwtSecret, createStackKeys, signApiKey } from '../../runner/local-stack/keys.ts';
import { freePort } from '../../runner/local-stack/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'agent-status-gateway-'));
const supervisor = new Supervisor((name, reason) => {
  throw new Error(`${name} ${reason}`);
});
const jwtSecret = createJwtSecret();
let gateway: Gateway;
// A function that takes the request, waits until the test has hung up, then drops the connection:
// the gateway's 502 goes to a client that is already gone.
let hangup: TcpServer;
let clientGone: () => void = () => {};
let anonKey: string;

beforeAll(async () => {
  mkdirSync(join(dir, 'echo'));
  writeFileSync(join(dir, 'echo', 'index.ts'), 'Deno.serve((request) => new Response(new URL(request.url).pathname));\n');
  const echo = await startFunction('echo', {
    supervisor,
    dir,
    env: { SUPABASE_URL: 'http://127.0.0.1:1', SUPABASE_ANON_KEY: '', SUPABASE_DB_URL: '' },
  });
  hangup = createTcpServer((socket) => {
    socket.once('data', () => {
      clientGone = () => setTimeout(() => socket.destroy(), 100);
    });
  });
  const hangupPort = await freePort();
  await new Promise<void>((resolve) => hangup.listen(hangupPort, '127.0.0.1', resolve));
  const keys = await createStackKeys(jwtSecret, 'legacy');
  anonKey = keys.publishableKey;
  gateway = new Gateway({
    port: await freePort(),
    postgrestPort: await freePort(),
    auth: new Hono().get('/auth/v1/endless', () => {
      // one chunk, then nothing: the answer is still being written when the client hangs up
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('first chunk'));
        },
      });
      return new Response(body);
    }),
    keys,
    functionTarget: async (name) =>
      name === 'echo'
        ? { port: echo.port, verifyJwt: true }
        : name === 'open'
          ? { port: echo.port, verifyJwt: false }
          : name === 'hangup'
            ? { port: hangupPort, verifyJwt: false }
            : `no ${name}`,
    dashboardConfig: { supabaseUrl: '', supabaseAnonKey: '', realtime: false },
  });
  await gateway.start();
});

afterAll(async () => {
  await gateway?.stop();
  await new Promise((resolve) => hangup?.close(resolve));
  await supervisor.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('gateway in front of the functions', () => {
  it('checks the JWT of a function that verifies it', async () => {
    expect((await fetch(`${gateway.url}/functions/v1/echo`)).status).toBe(401);
    const forged = await fetch(`${gateway.url}/functions/v1/echo`, {
      headers: { authorization: `Bearer ${await signApiKey(createJwtSecret(), 'anon')}` },
    });
    expect(forged.status).toBe(401);
    expect((await forged.json()).message).toBe('Invalid JWT');
    const signed = await fetch(`${gateway.url}/functions/v1/echo/sub/path?x=1`, { headers: { authorization: `Bearer ${anonKey}` } });
    expect(signed.status).toBe(200);
    // the function sees its own base path, as on Supabase
    expect(await signed.text()).toBe('/echo/sub/path');
  });

  it('lets anything through to a function with verify_jwt = false', async () => {
    const response = await fetch(`${gateway.url}/functions/v1/open`, { headers: { authorization: 'Bearer asa_not_a_jwt' } });
    expect(response.status).toBe(200);
  });

  it('reads verify_jwt from config.toml, true unless a function says false', () => {
    const toml = join(dir, 'config.toml');
    writeFileSync(toml, '[functions.heartbeat]\nverify_jwt = false # agents hold no JWT\n\n[functions."other"]\nenabled = true\n');
    expect(verifiesJwt('heartbeat', toml)).toBe(false);
    expect(verifiesJwt('other', toml)).toBe(true);
    expect(verifiesJwt('missing', toml)).toBe(true);
    expect(verifiesJwt('heartbeat', join(dir, 'no-such.toml'))).toBe(true);
  });

  it('lets a client hang up before the answer without an unhandled rejection', async () => {
    const escaped: unknown[] = [];
    const record = (reason: unknown) => escaped.push(reason);
    process.on('unhandledRejection', record);
    try {
      const closed = new Promise<void>((resolve) => {
        const request = httpRequest(`${gateway.url}/functions/v1/hangup`, { method: 'POST' });
        request.on('error', () => resolve());
        request.on('close', () => resolve());
        request.write('{"status":"running"');
        setTimeout(() => {
          request.destroy();
          clientGone();
        }, 200);
      });
      await closed;
      // the function drops its connection 100 ms after the client left; the 502 has no one to go to
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(escaped).toEqual([]);
      // and the gateway still answers
      expect((await fetch(`${gateway.url}/functions/v1/open`)).status).toBe(200);
    } finally {
      process.off('unhandledRejection', record);
    }
  });
});
