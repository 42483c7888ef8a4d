// Both key styles a Supabase project has, through every client: new keys (sb_publishable_ /
// sb_secret_, not JWTs; ES256 sessions verified with the project's JWKS), which projects issue now,
// and legacy JWT keys (anon / service_role; HS256 sessions). Each style gets a stack of its own; the
// functions, a runner, the CLI and the dashboard in Chromium all work with the keys it hands out.
import { createClient } from '@supabase/supabase-js';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import type { Browser } from 'playwright-core';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KeyStyle, createJwtSecret, signApiKey } from '../../runner/local-stack/keys.ts';
import { parseConfig } from '../../runner/daemon/config.ts';
import { cli, stackEnv } from '../cli/helpers.ts';
import { createToken, registerRunner } from '../helpers/agents.ts';
import { useTestStack } from '../helpers/stack.ts';
import { agent, fixtureAgent, makeHost } from '../runner/host.ts';
import { waitFor } from '../runner/helpers.ts';
import { buildDashboard, launchChromium, removeDir, serveDashboard, signIn } from '../web/helpers.ts';

let dashboardDir: string | undefined;
let browser: Browser | undefined;
beforeAll(async () => {
  dashboardDir = await buildDashboard();
  browser = await launchChromium();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  removeDir(dashboardDir);
});

for (const style of ['new', 'legacy'] as KeyStyle[]) {
  describe(`${style} keys`, () => {
    const stack = useTestStack({ functions: true, keyStyle: style });
    const signedIn = async () => {
      const client = createClient(stack.url, stack.anonKey, {
        realtime: { transport: WebSocket as never },
        auth: { persistSession: false, autoRefreshToken: false },
      });
      const { data, error } = await client.auth.signInWithPassword(stack.operator);
      expect(error).toBeNull();
      return { client, session: data.session! };
    };

    it('hands out keys and session tokens of that style, verifiable as Supabase documents', async () => {
      const { session } = await signedIn();
      const { alg } = decodeProtectedHeader(session.access_token);
      if (style === 'new') {
        expect(stack.anonKey).toMatch(/^sb_publishable_\w+/);
        expect(stack.serviceKey).toMatch(/^sb_secret_\w+/);
        expect(alg).toBe('ES256');
        const jwks = createRemoteJWKSet(new URL(`${stack.url}/auth/v1/.well-known/jwks.json`));
        const { payload } = await jwtVerify(session.access_token, jwks);
        expect(payload).toMatchObject({ role: 'authenticated', email: stack.operator.email });
      } else {
        expect(stack.anonKey.split('.')).toHaveLength(3);
        expect(alg).toBe('HS256');
      }
    });

    it('the gateway takes only this style’s keys, and never a secret key from a browser', async () => {
      const read = (apikey: string, headers: Record<string, string> = {}) =>
        fetch(`${stack.url}/rest/v1/agent_status?select=agent_name`, { headers: { apikey, ...headers } });
      expect((await read(stack.serviceKey)).status).toBe(200);
      const otherStyle = style === 'new' ? await signApiKey(createJwtSecret(), 'anon') : 'sb_publishable_not_this_projects';
      expect((await read(otherStyle)).status).toBe(401);
      if (style === 'new') {
        const browserLike = await read(stack.serviceKey, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0' });
        expect(browserLike.status).toBe(401);
        expect(((await browserLike.json()) as { message: string }).message).toBe('Forbidden use of secret API key in browser');
      }
    });

    it('functions: an operator session and an operator token enqueue commands', async () => {
      await registerRunner(stack.db.sql, `keys-${style}`, [`managed-${style}`]);
      const { client } = await signedIn();
      const bySession = await client.functions.invoke('command', { body: { action: 'restart', agent_name: `managed-${style}` } });
      expect(bySession.error).toBeNull();
      expect(bySession.data.commands).toHaveLength(1);
      const operatorToken = await createToken(stack.db.sql, 'operator', { email: stack.operator.email });
      const byToken = await fetch(`${stack.url}/functions/v1/command`, {
        method: 'POST',
        headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'restart', agent_name: `managed-${style}` }),
      });
      expect(byToken.status).toBe(202);
    });

    it('a runner configured with the publishable key supervises and reports its agent', async () => {
      const entry = fixtureAgent('forever.sh', { autostart: true });
      const host = await makeHost(stack, [entry]);
      await host.start();
      await waitFor(`${entry.name} running`, async () => (await agent(stack.db.sql, entry.name))?.status === 'running', 20_000);
    }, 60_000);

    it('the CLI lists agents with the publishable key and an operator sign-in', async () => {
      await registerRunner(stack.db.sql, `cli-${style}`, [`listed-${style}`]);
      const listed = await cli(['list'], stackEnv(stack));
      expect(listed.stderr).toBe('');
      expect(listed.exitCode).toBe(0);
      expect(listed.stdout).toContain(`listed-${style}`);
    }, 60_000);

    it('the runner and the CLI refuse the secret key where the publishable key belongs', async () => {
      const config = `supabase: { url: ${stack.url}, anon_key: ${stack.serviceKey} }\nagents: [{ name: a, command: sleep }]\n`;
      expect(() => parseConfig(config, 'agents.yaml', { env: { AGENT_STATUS_RUNNER_TOKEN: 'asr_x' } })).toThrow(
        style === 'new' ? /it is a secret key \(sb_secret_\.\.\.\)/ : /it is the service-role key/,
      );
      const listed = await cli(['list'], { ...stackEnv(stack), AGENT_STATUS_ANON_KEY: stack.serviceKey });
      expect(listed.exitCode).not.toBe(0);
      expect(listed.stderr).toContain('the key given as the publishable key is not one');
    }, 60_000);

    it('the dashboard in Chromium signs in with the publishable key and shows the agents', async () => {
      await registerRunner(stack.db.sql, `web-${style}`, [`shown-${style}`]);
      const served = await serveDashboard(dashboardDir!, { supabaseUrl: stack.url, supabaseAnonKey: stack.anonKey });
      const context = await browser!.newContext();
      try {
        const page = await context.newPage();
        await signIn(page, served.url, stack.operator);
        await page.locator('.rows .row', { hasText: `shown-${style}` }).waitFor({ timeout: 20_000 });
      } finally {
        await context.close();
        await served.close();
      }
    }, 60_000);
  });
}
