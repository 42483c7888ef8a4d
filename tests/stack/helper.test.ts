// useTestStack: PostgREST, the auth stand-in and the gateway over this file's own database, used
// through supabase-js as the dashboard and CLI use them.
import { describe, it, expect } from 'vitest';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { useTestStack } from '../helpers/stack.ts';

const stack = useTestStack();

function client(key = stack.anonKey) {
  return createClient(stack.url, key, {
    realtime: { transport: WebSocket as never },
    auth: { persistSession: false, autoRefreshToken: false },
  });
}

describe('local stack through the gateway', () => {
  it('lets the operator sign in, read agents, refresh and sign out', async () => {
    const supabase = client();
    const { data, error } = await supabase.auth.signInWithPassword(stack.operator);
    expect(error).toBeNull();
    expect(data.user?.email).toBe(stack.operator.email);

    const who = await supabase.rpc('whoami');
    expect(who.error).toBeNull();
    expect(who.data).toMatchObject({ signed_in: true, operator: true, email: stack.operator.email });

    const agents = await supabase.from('agent_status').select('*');
    expect(agents.error).toBeNull();
    expect(agents.data).toEqual([]);

    const user = await supabase.auth.getUser();
    expect(user.data.user?.id).toBe(data.user?.id);

    const refreshed = await supabase.auth.refreshSession();
    expect(refreshed.error).toBeNull();
    expect(refreshed.data.session?.refresh_token).not.toBe(data.session?.refresh_token);
    // the used refresh token no longer works
    const reused = await client().auth.refreshSession({ refresh_token: data.session!.refresh_token });
    expect(reused.error?.message).toMatch(/Refresh Token/);

    expect((await supabase.auth.signOut()).error).toBeNull();
    expect((await supabase.auth.getSession()).data.session).toBeNull();
    // the signed-out session's refresh token is revoked too
    const afterSignOut = await client().auth.refreshSession({ refresh_token: refreshed.data.session!.refresh_token });
    expect(afterSignOut.error).not.toBeNull();
  });

  it('refuses a wrong password with the error supabase-js expects', async () => {
    const { error } = await client().auth.signInWithPassword({ email: stack.operator.email, password: 'wrong-password' });
    expect(error?.code).toBe('invalid_credentials');
    expect(error?.status).toBe(400);
  });

  it('signs in a created user who is not an operator and sees nothing', async () => {
    await stack.createUser('visitor@example.com', 'visitor-password');
    const supabase = client();
    expect((await supabase.auth.signInWithPassword({ email: 'visitor@example.com', password: 'visitor-password' })).error).toBeNull();
    expect((await supabase.rpc('whoami')).data).toMatchObject({ signed_in: true, operator: false });
    await stack.db.sql`insert into public.agent_status (agent_name) values ('seen-by-operators-only')`;
    expect((await supabase.from('agent_status').select('*')).data).toEqual([]);
    const asService = await client(stack.serviceKey).from('agent_status').select('agent_name');
    expect(asService.data).toEqual([{ agent_name: 'seen-by-operators-only' }]);
  });

  it('asks for an apikey on /rest/v1 as Supabase does', async () => {
    const response = await fetch(`${stack.url}/rest/v1/agent_status`);
    expect(response.status).toBe(401);
    expect((await response.json()).message).toMatch(/API key/);
    const wrong = await fetch(`${stack.url}/rest/v1/agent_status`, { headers: { apikey: 'not-a-key' } });
    expect(wrong.status).toBe(401);
    // with the anon key the request reaches PostgREST, where anon may read nothing
    const anon = await fetch(`${stack.url}/rest/v1/agent_status`, { headers: { apikey: stack.anonKey } });
    expect((await anon.json()).code).toBe('42501');
    const service = await fetch(`${stack.url}/rest/v1/agent_status`, { headers: { apikey: stack.serviceKey } });
    expect(service.status).toBe(200);
    // the key may also come as a query parameter, even on the API root
    const root = await fetch(`${stack.url}/rest/v1?apikey=${stack.serviceKey}`);
    expect(root.status).toBe(200);
  });

  it('takes the API down and brings it back on the same port', async () => {
    await stack.gateway.stop();
    await expect(fetch(`${stack.url}/rest/v1/agent_status`, { headers: { apikey: stack.serviceKey } })).rejects.toThrow();
    await stack.gateway.start();
    const back = await fetch(`${stack.url}/rest/v1/agent_status`, { headers: { apikey: stack.serviceKey } });
    expect(back.status).toBe(200);
  });

  it('serves the dashboard at / with a config.js naming this stack, and answers CORS preflights', async () => {
    const page = await fetch(`${stack.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const config = await (await fetch(`${stack.url}/config.js`)).text();
    expect(config).toBe(
      `window.AGENT_STATUS_CONFIG = ${JSON.stringify({ supabaseUrl: stack.url, supabaseAnonKey: stack.anonKey, realtime: false })};\n`,
    );
    const preflight = await fetch(`${stack.url}/rest/v1/agent_status`, {
      method: 'OPTIONS',
      headers: { origin: 'http://example.test', 'access-control-request-headers': 'apikey, authorization' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
  });
});
