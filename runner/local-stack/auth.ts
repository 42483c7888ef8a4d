// The smallest stand-in for Supabase Auth (GoTrue) that supabase-js needs for email sign-in:
// signInWithPassword, getUser, refreshing a session and signOut. Supabase Auth has no npm package, so
// locally users live in the `local_auth` schema that only this stack creates (never a migration: a
// real project has auth.users instead). Sessions are JWTs from keys.ts: ES256 with a JWKS by default, as
// Supabase signs them now, or HS256 with the legacy keys.
import { randomBytes, randomUUID, scrypt as scryptCallback, timingSafeEqual, createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { Hono, type Context } from 'hono';
import type { Sql } from 'postgres';
import type { StackKeys } from './keys.ts';

const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

const ACCESS_TOKEN_SECONDS = 3600;

export async function prepareAuthSchema(sql: Sql): Promise<void> {
  await sql.unsafe(`
    create schema if not exists local_auth;
    revoke all on schema local_auth from public;
    create table if not exists local_auth.users (
      id uuid primary key default gen_random_uuid(),
      email text not null unique check (email = lower(email)),
      password_hash text not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      last_sign_in_at timestamptz
    );
    create table if not exists local_auth.sessions (
      id uuid primary key,
      user_id uuid not null references local_auth.users (id) on delete cascade,
      refresh_token_hash text not null unique,
      created_at timestamptz not null default now(),
      revoked_at timestamptz
    );`);
}

async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, 32);
  return `scrypt:${salt.toString('base64')}:${hash.toString('base64')}`;
}

async function passwordMatches(password: string, stored: string): Promise<boolean> {
  const [scheme, salt, hash] = stored.split(':');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length);
  return timingSafeEqual(actual, expected);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Creates a user who can sign in, or sets the password of an existing one. Returns the user id. */
export async function createAuthUser(sql: Sql, email: string, password: string): Promise<string> {
  if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw new Error(`${JSON.stringify(email)} is not an email address`);
  if (password.length < 6) throw new Error('a password needs at least 6 characters');
  const hash = await hashPassword(password);
  const [row] = await sql`
    insert into local_auth.users (email, password_hash) values (${email.toLowerCase()}, ${hash})
    on conflict (email) do update set password_hash = excluded.password_hash, updated_at = now()
    returning id`;
  return row.id as string;
}

interface UserRow {
  id: string;
  email: string;
  created_at: Date;
  updated_at: Date;
  last_sign_in_at: Date | null;
}

// The user object as Supabase Auth returns it (the fields supabase-js and dashboards read).
function userJson(user: UserRow) {
  return {
    id: user.id,
    aud: 'authenticated',
    role: 'authenticated',
    email: user.email,
    email_confirmed_at: user.created_at.toISOString(),
    confirmed_at: user.created_at.toISOString(),
    phone: '',
    last_sign_in_at: user.last_sign_in_at?.toISOString() ?? null,
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: {},
    identities: [],
    is_anonymous: false,
    created_at: user.created_at.toISOString(),
    updated_at: user.updated_at.toISOString(),
  };
}

// Errors in the shape of Supabase Auth's API version 2024-01-01, which supabase-js turns into AuthApiError.
function authError(c: Context, status: 400 | 401 | 403 | 404 | 405, code: string, message: string) {
  c.header('x-supabase-api-version', '2024-01-01');
  return c.json({ code: status, error_code: code, msg: message }, status);
}

export function createAuthApp(options: { sql: Sql; keys: StackKeys }): Hono {
  const { sql, keys } = options;
  const app = new Hono().basePath('/auth/v1');

  async function issueSession(user: UserRow, sessionId: string, refreshToken: string) {
    const expiresAt = Math.floor(Date.now() / 1000) + ACCESS_TOKEN_SECONDS;
    const accessToken = await keys.signSession({ sub: user.id, email: user.email, sessionId }, expiresAt);
    return {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: ACCESS_TOKEN_SECONDS,
      expires_at: expiresAt,
      refresh_token: refreshToken,
      user: userJson(user),
    };
  }

  // The signed-in user behind a request's bearer token, with its session, or why there is none.
  async function bearer(c: Context) {
    const token = /^Bearer (.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const claims = token ? await keys.verify(token) : undefined;
    if (!claims?.sub || claims.role !== 'authenticated') return undefined;
    const sessionId = typeof claims.session_id === 'string' ? claims.session_id : null;
    const [row] = await sql<(UserRow & { revoked: boolean })[]>`
      select u.*, s.id is null or s.revoked_at is not null as revoked
      from local_auth.users u left join local_auth.sessions s on s.id = ${sessionId}::uuid and s.user_id = u.id
      where u.id = ${claims.sub}::uuid`;
    return row && sessionId ? { user: row, sessionId, revoked: row.revoked } : undefined;
  }

  // Where clients and functions find the public keys of session tokens, as on Supabase.
  app.get('/.well-known/jwks.json', (c) => c.json(keys.jwks));
  app.get('/health', (c) => c.json({ name: 'agent-status local auth', description: 'local stand-in for Supabase Auth' }));
  app.get('/settings', (c) =>
    c.json({ external: { email: true }, disable_signup: true, mailer_autoconfirm: true, phone_autoconfirm: false }),
  );

  app.post('/token', async (c) => {
    const grant = c.req.query('grant_type');
    const body = (await c.req.json().catch(() => ({}))) as Record<string, unknown>;
    if (grant === 'password') {
      const email = String(body.email ?? '').toLowerCase();
      const password = String(body.password ?? '');
      const [user] = await sql<(UserRow & { password_hash: string })[]>`select * from local_auth.users where email = ${email}`;
      if (!user || !(await passwordMatches(password, user.password_hash))) {
        return authError(c, 400, 'invalid_credentials', 'Invalid login credentials');
      }
      const sessionId = randomUUID();
      const refreshToken = randomBytes(24).toString('base64url');
      const [signedIn] = await sql<UserRow[]>`
        with s as (insert into local_auth.sessions (id, user_id, refresh_token_hash)
                   values (${sessionId}, ${user.id}, ${sha256(refreshToken)}))
        update local_auth.users set last_sign_in_at = now() where id = ${user.id} returning *`;
      return c.json(await issueSession(signedIn, sessionId, refreshToken));
    }
    if (grant === 'refresh_token') {
      const presented = String(body.refresh_token ?? '');
      const refreshToken = randomBytes(24).toString('base64url');
      // Rotation as Supabase Auth does it: the old refresh token stops working once used.
      const [session] = await sql<{ id: string; user_id: string }[]>`
        update local_auth.sessions set refresh_token_hash = ${sha256(refreshToken)}
        where refresh_token_hash = ${sha256(presented)} and revoked_at is null
        returning id, user_id`;
      if (!session) return authError(c, 400, 'refresh_token_not_found', 'Invalid Refresh Token: Refresh Token Not Found');
      const [user] = await sql<UserRow[]>`select * from local_auth.users where id = ${session.user_id}`;
      return c.json(await issueSession(user, session.id, refreshToken));
    }
    return authError(
      c,
      400,
      'unsupported_grant_type',
      `grant_type must be password or refresh_token, got ${JSON.stringify(grant ?? null)}`,
    );
  });

  app.get('/user', async (c) => {
    const who = await bearer(c);
    if (!who) return authError(c, 401, 'bad_jwt', 'invalid JWT: sign in again');
    if (who.revoked) return authError(c, 403, 'session_not_found', 'Session from session_id claim in JWT does not exist');
    return c.json(userJson(who.user));
  });

  app.post('/logout', async (c) => {
    const who = await bearer(c);
    if (!who) return authError(c, 401, 'bad_jwt', 'invalid JWT: sign in again');
    const scope = c.req.query('scope') ?? 'global';
    if (scope === 'global') {
      await sql`update local_auth.sessions set revoked_at = now() where user_id = ${who.user.id} and revoked_at is null`;
    } else if (scope === 'local') {
      await sql`update local_auth.sessions set revoked_at = now() where id = ${who.sessionId}::uuid and revoked_at is null`;
    } else {
      await sql`update local_auth.sessions set revoked_at = now()
                where user_id = ${who.user.id} and id <> ${who.sessionId}::uuid and revoked_at is null`;
    }
    return c.body(null, 204);
  });

  app.notFound((c) =>
    authError(c, 404, 'not_found', `${c.req.method} ${c.req.path} is not part of the local auth stand-in (email sign-in only)`),
  );
  return app;
}
