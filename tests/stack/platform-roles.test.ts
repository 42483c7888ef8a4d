// The API roles' timeouts as a Supabase project has them (anon 3 s, authenticated 8 s, PostgREST's own
// login 8 s), set by the local stack and the test harness (both call applyPlatformRoleSettings):
// PostgREST applies them to each request, and asRole in tests/helpers/database.ts does the same, so a
// path too slow for the platform fails in the tests too.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { SignJWT } from 'jose';
import { useTestDatabase, asRole } from '../helpers/database.ts';
import { Supervisor } from '../../runner/local-stack/children.ts';
import { createJwtSecret, signApiKey } from '../../runner/local-stack/keys.ts';
import { startPostgrest } from '../../runner/local-stack/postgrest.ts';
import { PLATFORM_ROLE_SETTINGS } from '../../runner/local-stack/platform-roles.ts';

const db = useTestDatabase();
const supervisor = new Supervisor((name, reason) => console.error(`${name} ${reason}`));
const jwtSecret = createJwtSecret();
let postgrestPort: number;

beforeAll(async () => {
  // a probe in this file's own database, made before PostgREST reads its schema: what a request's
  // transaction runs with
  await db.sql.unsafe(`
    create function public.test_request_limits() returns json language sql stable as $$
      select json_build_object('statement_timeout', current_setting('statement_timeout'), 'lock_timeout', current_setting('lock_timeout'))
    $$;
    grant execute on function public.test_request_limits() to anon, authenticated;`);
  const authenticatorUrl = new URL(db.url);
  authenticatorUrl.username = 'authenticator';
  postgrestPort = (await startPostgrest({ supervisor, authenticatorUrl: authenticatorUrl.toString(), jwtSecret })).port;
});

afterAll(() => supervisor.stopAll());

async function limitsThroughPostgrest(bearer: string) {
  const response = await fetch(`http://127.0.0.1:${postgrestPort}/rpc/test_request_limits`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: '{}',
  });
  return { status: response.status, body: await response.json() };
}

describe("Supabase's role settings", () => {
  it('are set on anon, authenticated and authenticator', async () => {
    const rows = await db.sql`
      select rolname, rolconfig from pg_roles where rolname in ('anon', 'authenticated', 'authenticator') order by rolname`;
    expect(Object.fromEntries(rows.map((row) => [row.rolname, row.rolconfig]))).toEqual({
      anon: ['statement_timeout=3s'],
      authenticated: ['statement_timeout=8s'],
      authenticator: ['statement_timeout=8s', 'lock_timeout=8s'],
    });
    expect(Object.keys(PLATFORM_ROLE_SETTINGS).sort()).toEqual(['anon', 'authenticated', 'authenticator']);
  });

  it('bound every request PostgREST runs as anon (3 s) and as a signed-in user (8 s)', async () => {
    const anonKey = await signApiKey(jwtSecret, 'anon');
    expect(await limitsThroughPostgrest(anonKey)).toEqual({ status: 200, body: { statement_timeout: '3s', lock_timeout: '8s' } });
    const session = await new SignJWT({ role: 'authenticated', sub: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(jwtSecret));
    expect(await limitsThroughPostgrest(session)).toEqual({
      status: 200,
      body: { statement_timeout: '8s', lock_timeout: '8s' },
    });
  });

  it('bound the SQL tests run as a role too', async () => {
    const limit = (role: 'anon' | 'authenticated') =>
      asRole(db.sql, role, {}, async (tx) => (await tx`select current_setting('statement_timeout') as limit`)[0].limit);
    expect(await limit('anon')).toBe('3s');
    expect(await limit('authenticated')).toBe('8s');
    await expect(asRole(db.sql, 'anon', {}, (tx) => tx`select pg_sleep(3.5)`)).rejects.toMatchObject({ code: '57014' });
  });
});
